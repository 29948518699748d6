/* Device time per stage of mhfa forwards, for mhfa-bench --stages: while recording, every kernel
 * launch (mhfa's and CLBlast's) is given a profiling event, and its time goes to the stage its
 * kernel belongs to. The queue must have been made with CL_QUEUE_PROFILING_ENABLE. */
#ifndef MHFA_TOOLS_STAGE_TIMES_H
#define MHFA_TOOLS_STAGE_TIMES_H

enum { STAGE_MASK, STAGE_PROJECT, STAGE_ATTEND, STAGE_OUTPUT, N_STAGES };
extern const char *const stage_names[N_STAGES];

/* Starts recording (one forward at a time, one thread). */
void stage_times_start(void);
/* Stops; after the queue has finished, the milliseconds per stage of what was recorded. Returns
 * the number of kernels, or -1 when a launch could not be recorded or timed. */
int stage_times_finish(double ms[N_STAGES]);

#endif
