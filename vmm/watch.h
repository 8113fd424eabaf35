/*
 * The silence watch.  A guest whose console says nothing for minutes may be
 * booting slowly (emulated kernel code), spinning, or hung; which, only the
 * vCPUs can tell.  When the console has been silent for interval seconds,
 * and again every interval seconds while it stays so, the watch prints on
 * standard error what each local vCPU does: running, halted or waiting for
 * its start-up IPI, its mode and RIP, and its exits per second since the
 * silence began (or since the previous report).
 *
 * It runs in the thread that waits for the VM's end (vm_wait_stop), which
 * calls watch_tick whenever it wakes and sleeps at most the time
 * watch_tick returns.  It asks the vCPUs' threads for their state
 * (vcpu_ask_report) and never touches their KVM state itself.
 *
 * Over several instances only rank 0 has the console: its watch reports
 * its own vCPUs and tells the others (vm_hooks.silent), whose watches are
 * asked with watch_ask and report theirs.
 */
#ifndef GVM_VMM_WATCH_H
#define GVM_VMM_WATCH_H

#include <stdint.h>

struct vm;
struct watch;

/*
 * Watch vm's console (vm->uart; without one, only watch_ask starts a
 * report).  interval_s 0: never report by itself.  NULL on failure, with
 * a message.
 */
struct watch *watch_create(struct vm *vm, unsigned interval_s);
void watch_destroy(struct watch *w);

/* Readable when watch_ask was called: the waiting thread polls it. */
int watch_fd(const struct watch *w);

/*
 * Look at the console and the vCPUs' answers, print what is due.  now:
 * CLOCK_MONOTONIC ns.  Returns how long to sleep at most, in ms (-1: until
 * watch_fd or something else wakes the thread).
 */
int watch_tick(struct watch *w, uint64_t now);

/* Report the local vCPUs soon: another instance's console has been silent for silent_s. */
void watch_ask(struct watch *w, unsigned silent_s);

#endif
