/*
 * The MC146818 CMOS real-time clock at 0x70/0x71: the host's UTC time in
 * BCD, 24-hour mode, and 128 bytes of CMOS RAM.  No alarm or periodic
 * interrupt (Linux only reads the time).
 */
#ifndef GVM_VMM_HW_RTC_H
#define GVM_VMM_HW_RTC_H

#include "vmm/iobus.h"

struct rtc;

struct rtc *rtc_create(struct io_bus *pio);
void rtc_destroy(struct rtc *r);

#endif
