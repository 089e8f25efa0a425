/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_FLASH_PRIVATE_H
#define OX_FLASH_PRIVATE_H
/* Shared between the files of lib/flash; not installed. */
#include <rte_log.h>

#include "ox_flash.h"

extern int ox_flash_logtype;
#define FLASH_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, ox_flash_logtype, "flash: " fmt "\n", ##__VA_ARGS__)

/* Take the per-interface instance lock (-EBUSY if another process holds it). */
int flash_lock(struct ox_flash *f);
void flash_unlock(struct ox_flash *f);
/* Refuse a foreign XDP program on the interface; remove a stale one of ours. */
int flash_xdp_check(struct ox_flash *f, const struct ox_flash_conf *conf);
/* Detach the ox_steer copy the previous port attached, so the next can load. */
int flash_xdp_detach_own(struct ox_flash *f);
/* Put every port's socket into the attached ox_steer and set its port. */
int flash_xdp_wire(struct ox_flash *f, const struct ox_flash_conf *conf);
void flash_xdp_release(struct ox_flash *f);

#endif /* OX_FLASH_PRIVATE_H */
