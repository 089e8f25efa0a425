/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP side of FLASH: which program sits on the interface, whose it is,
 * and wiring every port's socket into ox_steer's xsks_map.
 *
 * net_af_xdp (22.11) loads xdp_prog= itself, once per port, and attaches it
 * with XDP_FLAGS_UPDATE_IF_NOEXIST, so a second port on the same interface
 * cannot attach its copy while the first one's is there. FLASH therefore
 * detaches its own freshly loaded copy before each further port sets up,
 * and once all sockets exist inserts every one of them into the map of the
 * copy left attached. Packets reach the kernel meanwhile; none are lost to
 * a missing socket (ox_steer passes when a queue has none).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <rte_common.h>
#include <rte_log.h>

#include "ox_flash.h"
#include "private/ox_flash_private.h"
#include "ox_steer.h"

#define FLASH_LOCK_DIR "/run/oxidize"

static const char *
xdp_mode_str(uint8_t mode)
{
	switch (mode) {
	case XDP_ATTACHED_DRV:
		return "native";
	case XDP_ATTACHED_SKB:
		return "generic";
	case XDP_ATTACHED_HW:
		return "offload";
	case XDP_ATTACHED_MULTI:
		return "multi";
	default:
		return "none";
	}
}

/* The one program attached to ifindex, in whatever mode. */
static int
xdp_query(unsigned int ifindex, uint32_t *prog_id, uint8_t *mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int ret;

	ret = bpf_xdp_query((int)ifindex, 0, &q);
	if (ret != 0)
		return ret;
	*mode = q.attach_mode;
	*prog_id = q.prog_id ? q.prog_id : q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
	return 0;
}

static int
prog_name(uint32_t id, char *name, size_t len)
{
	struct bpf_prog_info info;
	uint32_t info_len = sizeof(info);
	int fd, ret;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	ret = bpf_obj_get_info_by_fd(fd, &info, &info_len);
	close(fd);
	if (ret != 0)
		return -errno;
	snprintf(name, len, "%s", info.name);
	return 0;
}

/* fd of the map called name that program id uses, or -ENOENT. */
static int
prog_map_fd(uint32_t id, const char *name)
{
	uint32_t map_ids[16], info_len, i;
	struct bpf_prog_info info;
	struct bpf_map_info minfo;
	int pfd, mfd, ret = -ENOENT;

	pfd = bpf_prog_get_fd_by_id(id);
	if (pfd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = RTE_DIM(map_ids);
	info.map_ids = (uint64_t)(uintptr_t)map_ids;
	info_len = sizeof(info);
	if (bpf_obj_get_info_by_fd(pfd, &info, &info_len) != 0) {
		ret = -errno;
		goto out;
	}
	for (i = 0; i < info.nr_map_ids && i < RTE_DIM(map_ids); i++) {
		mfd = bpf_map_get_fd_by_id(map_ids[i]);
		if (mfd < 0)
			continue;
		memset(&minfo, 0, sizeof(minfo));
		info_len = sizeof(minfo);
		if (bpf_obj_get_info_by_fd(mfd, &minfo, &info_len) == 0 &&
		    strcmp(minfo.name, name) == 0) {
			ret = mfd;
			goto out;
		}
		close(mfd);
	}
out:
	close(pfd);
	return ret;
}

int
flash_lock(struct ox_flash *f)
{
	char path[128];
	struct stat st;
	int fd;

	/* Interface names repeat across network namespaces; the lock is per
	 * (namespace, ifindex). */
	if (stat("/proc/self/ns/net", &st) != 0)
		st.st_ino = 0;
	if (mkdir(FLASH_LOCK_DIR, 0755) != 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), FLASH_LOCK_DIR "/flash-%lu-%u.lock", (unsigned long)st.st_ino,
		 f->ifindex);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		FLASH_LOG(ERR, "another process runs FLASH on %s (lock %s held)", f->iface, path);
		return -EBUSY;
	}
	f->lock_fd = fd;
	return 0;
}

void
flash_unlock(struct ox_flash *f)
{
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	f->lock_fd = -1;
}

int
flash_xdp_check(struct ox_flash *f, const struct ox_flash_conf *conf)
{
	char name[BPF_OBJ_NAME_LEN] = "";
	uint32_t id;
	uint8_t mode;
	int ret;

	ret = xdp_query(f->ifindex, &id, &mode);
	if (ret != 0) {
		FLASH_LOG(ERR, "cannot query XDP on %s: %s", f->iface, strerror(-ret));
		return ret;
	}
	if (id == 0)
		return 0;
	prog_name(id, name, sizeof(name));
	if (strcmp(name, OX_STEER_PROG_NAME) == 0) {
		/* We hold the interface lock, so no live FLASH owns it. */
		FLASH_LOG(WARNING,
			  "replacing a stale %s program (id %u) left on %s by a "
			  "process that did not exit cleanly",
			  name, id, f->iface);
	} else if (conf->xdp_replace) {
		FLASH_LOG(WARNING, "replacing XDP program '%s' (id %u) on %s as asked", name, id,
			  f->iface);
	} else {
		FLASH_LOG(ERR,
			  "%s already has XDP program '%s' (id %u, %s mode) that is not "
			  "ours",
			  f->iface, name, id, xdp_mode_str(mode));
		return -EEXIST;
	}
	ret = bpf_xdp_detach((int)f->ifindex, 0, NULL);
	if (ret != 0) {
		FLASH_LOG(ERR, "cannot detach XDP program %u from %s: %s", id, f->iface,
			  strerror(-ret));
		return ret;
	}
	return 0;
}

int
flash_xdp_detach_own(struct ox_flash *f)
{
	char name[BPF_OBJ_NAME_LEN] = "";
	uint32_t id;
	uint8_t mode;
	int ret;

	ret = xdp_query(f->ifindex, &id, &mode);
	if (ret != 0 || id == 0)
		return ret;
	if (prog_name(id, name, sizeof(name)) != 0 || strcmp(name, OX_STEER_PROG_NAME) != 0)
		return -EEXIST;
	return bpf_xdp_detach((int)f->ifindex, 0, NULL);
}

_Static_assert(OX_STEER_MAX_PORTS == OX_FLASH_MAX_STEER_PORTS, "one limit on steered ports");

int
flash_xdp_wire(struct ox_flash *f, const struct ox_flash_conf *conf)
{
	struct ox_steer_cfg cfg = { { 0 } };
	char name[BPF_OBJ_NAME_LEN] = "", ports[OX_STEER_MAX_PORTS * 7] = "";
	size_t o = 0;
	uint32_t id, key = 0;
	int xsks_fd, ret;
	uint8_t mode;
	uint16_t i;

	for (i = 0; i < OX_STEER_MAX_PORTS && conf->steer_ports[i] != 0; i++) {
		cfg.port_be[i] = htons(conf->steer_ports[i]);
		o += (size_t)snprintf(ports + o, sizeof(ports) - o, "%s%u", i ? "," : "",
				      conf->steer_ports[i]);
	}
	ret = xdp_query(f->ifindex, &id, &mode);
	if (ret == 0 && id == 0)
		ret = -ENOENT;
	if (ret == 0)
		ret = prog_name(id, name, sizeof(name));
	if (ret == 0 && strcmp(name, OX_STEER_PROG_NAME) != 0)
		ret = -EPROTO;
	if (ret != 0) {
		FLASH_LOG(ERR, "%s: %s is not the attached XDP program ('%s'): %s", f->iface,
			  conf->xdp_prog, name, strerror(-ret));
		return ret;
	}
	f->xdp_prog_id = id;
	f->xdp_mode = xdp_mode_str(mode);
	xsks_fd = prog_map_fd(id, OX_STEER_XSKS_MAP);
	f->steer_cfg_fd = prog_map_fd(id, OX_STEER_CFG_MAP);
	f->steer_stats_fd = prog_map_fd(id, OX_STEER_STATS_MAP);
	if (xsks_fd < 0 || f->steer_cfg_fd < 0 || f->steer_stats_fd < 0) {
		FLASH_LOG(ERR, "%s lacks the maps of ox_steer", conf->xdp_prog);
		ret = -EPROTO;
		goto out;
	}
	for (i = 0; i < f->n_ports; i++) {
		struct ox_flash_port *p = &f->ports[i];
		uint32_t q = p->queue;

		if (p->xsk_fd < 0 || bpf_map_update_elem(xsks_fd, &q, &p->xsk_fd, 0) != 0) {
			ret = p->xsk_fd < 0 ? -ENOENT : -errno;
			FLASH_LOG(ERR, "%s: cannot insert the socket of queue %u into xsks_map: %s",
				  f->iface, q, strerror(-ret));
			goto out;
		}
	}
	/* Last: from here on the port's datagrams leave the kernel's path. */
	if (bpf_map_update_elem(f->steer_cfg_fd, &key, &cfg, 0) != 0) {
		ret = -errno;
		FLASH_LOG(ERR, "cannot configure ox_steer: %s", strerror(-ret));
		goto out;
	}
	FLASH_LOG(INFO, "%s: ox_steer (id %u, %s mode) steers UDP port(s) %s to %u queue(s)",
		  f->iface, id, f->xdp_mode, ports, f->n_ports);
	ret = 0;
out:
	if (xsks_fd >= 0)
		close(xsks_fd);
	return ret;
}

void
flash_xdp_release(struct ox_flash *f)
{
	if (f->steer_cfg_fd >= 0)
		close(f->steer_cfg_fd);
	if (f->steer_stats_fd >= 0)
		close(f->steer_stats_fd);
	f->steer_cfg_fd = -1;
	f->steer_stats_fd = -1;
	f->xdp_prog_id = 0;
}

int
ox_flash_steer_stats(const struct ox_flash *f, uint64_t out[OX_STEER_STAT_MAX])
{
	uint64_t vals[1024];
	int ncpu, c;
	uint32_t k;

	memset(out, 0, sizeof(uint64_t) * OX_STEER_STAT_MAX);
	if (f->steer_stats_fd < 0)
		return -ENOENT;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || ncpu > (int)RTE_DIM(vals))
		return -ERANGE;
	for (k = 0; k < OX_STEER_STAT_MAX; k++) {
		if (bpf_map_lookup_elem(f->steer_stats_fd, &k, vals) != 0)
			return -errno;
		for (c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	return 0;
}

const char *const ox_flash_steer_stat_names[OX_STEER_STAT_MAX] = { OX_STEER_STAT_NAMES };
