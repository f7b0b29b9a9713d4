/*-------------------------------------------------------------------------
 *
 * machine.h
 *		The machine's CPUs and memory, as Linux /proc shows them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_MACHINE_H
#define APS_MACHINE_H

/* CPU time of the whole machine since boot, in clock ticks (USER_HZ). */
typedef struct ApsCpuTimes
{
	uint64 busy;  /* user, nice, system, irq, softirq, steal */
	uint64 total; /* the same plus idle and iowait */
} ApsCpuTimes;

extern bool	  aps_machine_cpu_times(ApsCpuTimes *times);
extern int	  aps_machine_cpus(void);
extern bool	  aps_machine_memory(int64 *total_kb, int64 *available_kb);
extern double aps_machine_ticks_per_second(void);

#endif /* APS_MACHINE_H */
