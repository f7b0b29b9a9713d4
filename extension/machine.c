/*-------------------------------------------------------------------------
 *
 * machine.c
 *		The machine's CPUs and memory, as Linux /proc shows them.
 *
 * Read by the signals worker every 10 seconds (CPU use, memory use) and by
 * apiscale.capacity when it is read (CPUs, memory size).  Everything here
 * reports failure by its return value and never raises an error: a
 * machine without /proc (not Linux, a restricted container) has no data,
 * nothing more.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "machine.h"

/*
 * CPU time of the whole machine, from the first line of /proc/stat: user
 * nice system idle iowait irq softirq steal (guest time is already in
 * user).  Busy is everything but idle and iowait.
 */
bool
aps_machine_cpu_times(ApsCpuTimes *times)
{
	FILE			  *f = fopen("/proc/stat", "r");
	unsigned long long v[8] = {0};
	bool			   ok;

	if (f == NULL)
		return false;
	ok = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
				&v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8;
	fclose(f);
	if (!ok)
		return false;
	times->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	times->busy = times->total - v[3] - v[4];
	return true;
}

/*
 * CPUs of the machine: the "cpuN" lines of /proc/stat (those online), or
 * what sysconf says if it cannot be read; 0 if neither knows.
 */
int
aps_machine_cpus(void)
{
	FILE *f = fopen("/proc/stat", "r");
	char  line[256];
	int	  n = 0;

	if (f != NULL)
	{
		while (fgets(line, sizeof(line), f) != NULL)
		{
			/* Lines longer than the buffer continue without "cpu". */
			if (strncmp(line, "cpu", 3) == 0 && line[3] >= '0' &&
				line[3] <= '9')
				n++;
		}
		fclose(f);
	}
	if (n == 0)
	{
		long online = sysconf(_SC_NPROCESSORS_ONLN);

		n = online > 0 ? (int) online : 0;
	}
	return n;
}

/* MemTotal and MemAvailable of /proc/meminfo, in kB. */
bool
aps_machine_memory(int64 *total_kb, int64 *available_kb)
{
	FILE	 *f = fopen("/proc/meminfo", "r");
	char	  line[256];
	long long total = -1, avail = -1;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (sscanf(line, "MemTotal: %lld kB", &total) == 1)
			continue;
		if (sscanf(line, "MemAvailable: %lld kB", &avail) == 1)
			continue;
	}
	fclose(f);
	if (total <= 0 || avail < 0)
		return false;
	*total_kb = total;
	*available_kb = avail;
	return true;
}

/* The unit of /proc/stat's times (USER_HZ, 100 on Linux). */
double
aps_machine_ticks_per_second(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	return hz > 0 ? (double) hz : 100.0;
}
