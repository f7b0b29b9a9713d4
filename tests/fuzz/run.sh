#!/usr/bin/env bash
# run.sh TARGET SECONDS [LIBFUZZER-OPTION...]: fuzz one target for a while.
#
# The target reads its seeds (corpus/<name>/, checked in) and what earlier
# runs found (out/TARGET/corpus/, where new inputs go).  The whole libFuzzer
# log goes to out/TARGET/fuzz.log; one summary line is printed.  On a crash,
# leak, timeout or broken invariant, the input that did it is saved in
# out/TARGET/ and its path printed, with the command that replays it; the
# exit status is non-zero.
set -uo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
target=$1
seconds=$2
shift 2
out=$dir/out/$target
log=$out/fuzz.log
seeds=$dir/corpus/${target#fuzz_}

[ -x "$dir/$target" ] || { echo "$target: not built (make -C tests/fuzz)" >&2; exit 1; }
[ -d "$seeds" ] || { echo "$target: no seed corpus $seeds" >&2; exit 1; }
mkdir -p "$out/corpus"

# -max_len: a start-up packet of MAX_STARTUP_LEN (10000) and then some.
# -timeout: no packet takes a second to parse; a hang is a finding.
UBSAN_OPTIONS=print_stacktrace=1 "$dir/$target" \
	-max_total_time="$seconds" -max_len=10100 -timeout=10 \
	-print_final_stats=1 -artifact_prefix="$out/" \
	"$@" "$out/corpus" "$seeds" >"$log" 2>&1
rc=$?

if [ $rc -eq 0 ]; then
	# "Done 2282286 runs in 11 second(s)", and the last status line
	done=$(grep -aE '^Done [0-9]+ runs' "$log" | tail -n 1)
	final=$(grep -aE '^#[0-9]+.* cov: ' "$log" | tail -n 1)
	cov=$(echo "$final" | grep -oE 'cov: [0-9]+ ft: [0-9]+')
	corp=$(echo "$final" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+')
	echo "$target: ${done#Done }, ${cov:-cov: ?}, corpus ${corp:-?} inputs"
	exit 0
fi

tail -n 40 "$log"
saved=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
if [ -n "$saved" ]; then
	echo "$target: FAILED; the input is saved as $saved"
	echo "$target: replay it with: $dir/$target $saved"
else
	echo "$target: FAILED (exit $rc) without saving an input; see $log"
fi
exit 1
