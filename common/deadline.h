/*
 * Deadlines on CLOCK_MONOTONIC: a host's wall clock may jump (NTP, an
 * administrator) while an instance waits, and a wait on it would then end
 * at once or hours late.  Condition variables that carry deadlines are
 * made with deadline_cond_init so that their timed waits use this clock.
 */
#ifndef GVM_COMMON_DEADLINE_H
#define GVM_COMMON_DEADLINE_H

#include <pthread.h>
#include <time.h>

#include <stdint.h>

/* Now on CLOCK_MONOTONIC, in ms. */
uint64_t deadline_now_ms(void);
/* *ts = now (CLOCK_MONOTONIC) + ms */
void deadline_in_ms(struct timespec *ts, unsigned long ms);
/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines. */
int deadline_cond_init(pthread_cond_t *c);
/* Join thread t, giving up at deadline (CLOCK_MONOTONIC): 0 joined, else an errno. */
int deadline_join(pthread_t t, const struct timespec *deadline);

#endif
