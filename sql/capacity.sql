--
-- apiscale.capacity: one row, the machine as /proc shows it, and its
-- figures consistent with one another.  (tests/monitoring/capacity.sh
-- checks the CPU figures against /proc under a synthetic load.)
--
SELECT count(*) AS rows FROM apiscale.capacity;

-- CPUs and memory as /proc says (read here with pg_read_file), the
-- connection limit, and the guide's size for that many CPUs.
SELECT c.cores = (SELECT count(*) FROM regexp_split_to_table(pg_read_file('/proc/stat'), E'\n') l
                   WHERE l ~ '^cpu[0-9]+ ') AS cores_as_proc,
       abs(c.memory_gb - substring(pg_read_file('/proc/meminfo')
                                   FROM 'MemTotal:\s+([0-9]+) kB')::bigint / 1048576.0) < 0.1
         AS memory_as_proc,
       c.max_connections = current_setting('max_connections')::int AS max_connections,
       c.server_size = CASE WHEN c.cores >= 16 THEN '16+ vCPU / 64+ GB'
                            WHEN c.cores >= 8 THEN '8 vCPU / 32 GB'
                            WHEN c.cores >= 4 THEN '4 vCPU / 8 GB'
                            WHEN c.cores >= 2 THEN '2 vCPU / 4 GB'
                            ELSE 'smaller than 2 vCPU / 4 GB' END AS guide_size
  FROM apiscale.capacity c;

-- Statements per second: after a reset, the statements counted over the
-- seconds since.  Each statement of this session counts once as it ends
-- (the SELECTs below, this one too).
SELECT apiscale.reset();
SELECT count(*) FROM generate_series(1, 10) \g /dev/null
\set ECHO none
\o /dev/null
SELECT 'SELECT 1' FROM generate_series(1, 200) \gexec
\o
\set ECHO all
SELECT pg_sleep(1.5);
SELECT statements_per_s * window_s BETWEEN 199 AND 206 AS statements_counted,
       window_s BETWEEN 1.5 AND 60 AS since_the_reset
  FROM apiscale.capacity;

-- The CPU figures come from the signals worker's samples (every 10 s, on
-- the 10-second grid): wait for the first whole 10 seconds after the reset.
DO $$
BEGIN
  FOR i IN 1 .. 250 LOOP
    EXIT WHEN (SELECT cpu_busy_pct IS NOT NULL FROM apiscale.capacity);
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
-- Consistent: the rate at apiscale.warn_cpu_pct (70%) of every CPU is what
-- those CPUs can do at cpu_ms_per_statement each, and the headroom is how
-- much more that is than today's rate.
SELECT cpu_busy_pct BETWEEN 0 AND 100 AS busy_pct,
       memory_used_pct BETWEEN 0 AND 100 AS memory_pct,
       cpu_ms_per_statement > 0 AS cost,
       abs(capacity_statements_per_s
           - 0.70 * cores * 1000 / cpu_ms_per_statement) <= 0.01 + 0.001 * capacity_statements_per_s
         AS at_70_pct,
       abs(headroom_pct - 100 * (capacity_statements_per_s - statements_per_s) / statements_per_s)
         <= 0.1 + 0.01 * abs(headroom_pct) AS headroom,
       peak_backends >= 1 AS backends,
       regexp_replace(suggestion, '[0-9][0-9,.]*', 'N', 'g') ~
         '^(At N statements/s the CPU is N% busy: you reach N% at about N statements/s \(Nx today''s rate\); |CPU is N% busy, over N%)'
         AS suggestion
  FROM apiscale.capacity;

-- The threshold is apiscale.warn_cpu_pct.
SET apiscale.warn_cpu_pct = 35;
SELECT abs(capacity_statements_per_s
           - 0.35 * cores * 1000 / cpu_ms_per_statement) <= 0.01 + 0.001 * capacity_statements_per_s
         AS at_35_pct
  FROM apiscale.capacity;
RESET apiscale.warn_cpu_pct;

-- A line in the report.
SELECT regexp_replace(line, '[0-9][0-9,.]*', 'N', 'g') ~ '^  .*vCPU.* \(N CPUs, N GB\): ' AS capacity_line
  FROM apiscale.report() WITH ORDINALITY AS r(line, n)
 WHERE n = (SELECT n + 1 FROM apiscale.report() WITH ORDINALITY AS r2(line, n)
             WHERE line = '== Capacity (stage 1: scale up)');
