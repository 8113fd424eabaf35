#include "vmm/hw/rtc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

enum {
	RTC_SECONDS = 0x00,
	RTC_MINUTES = 0x02,
	RTC_HOURS = 0x04,
	RTC_WEEKDAY = 0x06,
	RTC_DAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0A,
	RTC_REG_B = 0x0B,
	RTC_REG_C = 0x0C,
	RTC_REG_D = 0x0D,
	RTC_CENTURY = 0x32,
};

#define REG_B_24H 0x02
#define REG_B_BINARY 0x04

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

static uint8_t encode(const struct rtc *r, unsigned v)
{
	if (r->cmos[RTC_REG_B] & REG_B_BINARY)
		return v;
	return (v / 10) << 4 | v % 10;
}

static uint8_t read_locked(struct rtc *r, uint8_t reg)
{
	time_t now = time(NULL);
	struct tm tm;
	uint8_t v;

	gmtime_r(&now, &tm);
	switch (reg) {
	case RTC_SECONDS:
		return encode(r, tm.tm_sec);
	case RTC_MINUTES:
		return encode(r, tm.tm_min);
	case RTC_HOURS:
		if (r->cmos[RTC_REG_B] & REG_B_24H)
			return encode(r, tm.tm_hour);
		/* 12-hour mode: bit 7 is PM */
		return encode(r, tm.tm_hour % 12 ? tm.tm_hour % 12 : 12) |
		       (tm.tm_hour >= 12 ? 0x80 : 0);
	case RTC_WEEKDAY:
		return encode(r, tm.tm_wday + 1);
	case RTC_DAY:
		return encode(r, tm.tm_mday);
	case RTC_MONTH:
		return encode(r, tm.tm_mon + 1);
	case RTC_YEAR:
		return encode(r, tm.tm_year % 100);
	case RTC_CENTURY:
		return encode(r, (tm.tm_year + 1900) / 100);
	case RTC_REG_A:
		/* never "update in progress": the time is read whole from the host */
		return r->cmos[RTC_REG_A] & 0x7F;
	case RTC_REG_C:
		v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0; /* reading acknowledges the flags */
		return v;
	case RTC_REG_D:
		return 0x80; /* valid RAM and time */
	default:
		return r->cmos[reg & 0x7F];
	}
}

static void rtc_access(void *dev, struct io_access *a)
{
	struct rtc *r = dev;

	if (a->len != 1) {
		if (!a->write)
			io_data_set(a, ~0ull);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (a->off == 0) {
		/* bit 7 is the NMI mask: nothing to do here */
		if (a->write)
			r->index = a->data[0] & 0x7F;
		else
			a->data[0] = 0xFF;
	} else if (a->write) {
		/* the clock keeps host time: writes to it are dropped */
		if (r->index >= RTC_REG_A && r->index != RTC_REG_C && r->index != RTC_REG_D)
			r->cmos[r->index] = a->data[0];
	} else {
		a->data[0] = read_locked(r, r->index);
	}
	pthread_mutex_unlock(&r->lock);
}

struct rtc *rtc_create(struct io_bus *pio)
{
	struct rtc *r = calloc(1, sizeof(*r));

	if (!r) {
		pr_err("out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[RTC_REG_B] = REG_B_24H;
	if (pio && io_bus_register(pio, 0x70, 2, rtc_access, r, IO_SHARED, "RTC")) {
		rtc_destroy(r);
		return NULL;
	}
	return r;
}

void rtc_destroy(struct rtc *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}
