/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/ethtool.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_kvargs.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

#include "ox_flash.h"
#include "private/ox_flash_private.h"

RTE_LOG_REGISTER(ox_flash_logtype, ox.flash, INFO);

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

/* What net_af_xdp takes from the pool per socket in shared-UMEM mode
 * (ETH_AF_XDP_NUM_BUFFERS): it refuses a socket beyond pool size / this. */
#define FLASH_MBUFS_PER_SOCKET 4096
#define FLASH_MBUF_CACHE 256
/* One 2 KB data room per frame: the PMD needs the whole mbuf object inside
 * one 4 KB UMEM chunk. */
#define FLASH_MBUF_DATA_ROOM RTE_MBUF_DEFAULT_BUF_SIZE

const char *
ox_flash_umem_mode_str(enum ox_flash_umem_mode mode)
{
	return mode == OX_FLASH_UMEM_SHARED ? "shared" : "per-queue";
}

static int
count_sysfs_rx_queues(const char *iface)
{
	char path[128];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", iface);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "rx-", 3) == 0)
			n++;
	closedir(d);
	return n;
}

static int
count_ethtool_channels(const char *iface)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	int fd, n = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	ifr.ifr_data = (void *)&ch;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == 0)
		n = (int)(ch.combined_count > ch.rx_count ? ch.combined_count : ch.rx_count);
	close(fd);
	return n;
}

int
ox_flash_detect_queues(const char *iface)
{
	int n;

	if (iface == NULL || if_nametoindex(iface) == 0)
		return -ENODEV;
	n = count_sysfs_rx_queues(iface);
	if (n > 0)
		return n;
	n = count_ethtool_channels(iface);
	return n > 0 ? n : 1;
}

struct pool_span {
	uintptr_t start;
	uintptr_t limit;
	size_t obj_size;
	size_t header;
	unsigned int outside;
};

static void
pool_span_cb(struct rte_mempool *mp __rte_unused, void *arg, void *obj,
	     unsigned int idx __rte_unused)
{
	struct pool_span *s = arg;
	uintptr_t chunk = (uintptr_t)obj - s->header;

	if (chunk < s->start || chunk + s->obj_size > s->limit)
		s->outside++;
}

int
ox_flash_check_pool(struct rte_mempool *mp)
{
	const struct rte_mempool_memhdr *hdr;
	struct pool_span s;

	if (mp->nb_mem_chunks != 1) {
		FLASH_LOG(ERR, "pool %s spans %u memory chunks; the UMEM needs one", mp->name,
			  mp->nb_mem_chunks);
		return -EINVAL;
	}
	hdr = STAILQ_FIRST(&mp->mem_list);
	s.obj_size = mp->header_size + mp->elt_size + mp->trailer_size;
	s.header = mp->header_size;
	s.start = (uintptr_t)hdr->addr;
	/* net_af_xdp registers populated_size objects from the first byte. */
	s.limit = s.start + (uintptr_t)mp->populated_size * s.obj_size;
	s.outside = 0;
	rte_mempool_obj_iter(mp, pool_span_cb, &s);
	if (s.outside != 0) {
		FLASH_LOG(ERR, "pool %s has padding: %u of %u mbufs would lie outside the UMEM",
			  mp->name, s.outside, mp->populated_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * rte_pktmbuf_pool_create() lets objects skip to the next page rather than
 * straddle one, which pads the pool; AF_XDP needs virtual contiguity only,
 * so the pool is made with RTE_MEMPOOL_F_NO_IOVA_CONTIG and has no holes.
 */
struct rte_mempool *
ox_flash_pool_create(const char *name, unsigned int n, int socket)
{
	struct rte_pktmbuf_pool_private priv = {
		.mbuf_data_room_size = FLASH_MBUF_DATA_ROOM,
		.mbuf_priv_size = 0,
	};
	struct rte_mempool *mp;
	int ret;

	mp = rte_mempool_create_empty(name, n, sizeof(struct rte_mbuf) + FLASH_MBUF_DATA_ROOM,
				      FLASH_MBUF_CACHE, sizeof(priv), socket,
				      RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return NULL;
	ret = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
	if (ret != 0)
		goto fail;
	rte_pktmbuf_pool_init(mp, &priv);
	ret = rte_mempool_populate_default(mp);
	if (ret < 0 || mp->populated_size != n)
		goto fail;
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
fail:
	rte_mempool_free(mp);
	rte_errno = ENOMEM;
	return NULL;
}

static int
flash_probe_port(struct ox_flash *f, const struct ox_flash_conf *conf, uint16_t q, bool shared)
{
	struct ox_flash_port *p = &f->ports[f->n_ports];
	char args[512];
	int len, ret;

	snprintf(p->name, sizeof(p->name), "net_af_xdp_%s_%u", conf->iface, q);
	len = snprintf(args, sizeof(args), "iface=%s,start_queue=%u,queue_count=1%s", conf->iface,
		       q, shared ? ",shared_umem=1" : "");
	if (conf->xdp_prog != NULL)
		len += snprintf(args + len, sizeof(args) - len, ",xdp_prog=%s", conf->xdp_prog);
	if (conf->force_copy)
		len += snprintf(args + len, sizeof(args) - len, ",force_copy=1");
	if (conf->busy_budget != 0)
		len += snprintf(args + len, sizeof(args) - len, ",busy_budget=%d",
				conf->busy_budget < 0 ? 0 : conf->busy_budget);
	if ((size_t)len >= sizeof(args))
		return -EINVAL;

	ret = rte_eal_hotplug_add("vdev", p->name, args);
	if (ret != 0)
		return ret;
	ret = rte_eth_dev_get_port_by_name(p->name, &p->port_id);
	if (ret != 0) {
		rte_eal_hotplug_remove("vdev", p->name);
		return ret;
	}
	p->queue = q;
	f->n_ports++;
	return 0;
}

/* Sockets the process holds that answer XDP_OPTIONS: the AF_XDP ones. */
static int
xsk_fds(int *fds, int max)
{
	struct xdp_options opt;
	struct dirent *de;
	socklen_t len;
	int n = 0, fd;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		len = sizeof(opt);
		if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &opt, &len) == 0)
			fds[n++] = fd;
	}
	closedir(d);
	return n;
}

static bool
fd_in(int fd, const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

/* The PMD keeps its socket to itself; find it as the AF_XDP fd that the
 * port's RX queue setup created, and ask the kernel how it was bound. */
static void
flash_read_zero_copy(struct ox_flash_port *p, const int *before, int n_before)
{
	int after[OX_FLASH_MAX_QUEUES * 2 + 8];
	struct xdp_options opt;
	socklen_t len;
	int n, i;

	n = xsk_fds(after, RTE_DIM(after));
	for (i = 0; i < n; i++) {
		if (fd_in(after[i], before, n_before))
			continue;
		len = sizeof(opt);
		if (getsockopt(after[i], SOL_XDP, XDP_OPTIONS, &opt, &len) == 0) {
			p->zero_copy = (opt.flags & XDP_OPTIONS_ZEROCOPY) != 0;
			p->zc_known = true;
			p->xsk_fd = after[i];
		}
		return;
	}
}

static int
flash_setup_port(struct ox_flash *f, const struct ox_flash_conf *conf, struct ox_flash_port *p)
{
	struct rte_eth_conf eth_conf;
	struct rte_eth_dev_info info;
	int before[OX_FLASH_MAX_QUEUES * 2 + 8];
	uint16_t rx_desc = conf->rx_desc, tx_desc = conf->tx_desc;
	int n_before, ret;

	ret = rte_eth_dev_info_get(p->port_id, &info);
	if (ret != 0)
		return ret;
	if (rx_desc == 0)
		rx_desc = info.default_rxportconf.ring_size;
	if (tx_desc == 0)
		tx_desc = info.default_txportconf.ring_size;
	memset(&eth_conf, 0, sizeof(eth_conf));
	ret = rte_eth_dev_configure(p->port_id, 1, 1, &eth_conf);
	if (ret != 0) {
		FLASH_LOG(ERR, "%s: configure failed: %s", p->name, rte_strerror(-ret));
		return ret;
	}
	/* The PMD attaches its copy of xdp_prog here, but only if none is
	 * attached: take the previous port's copy off (its socket goes into
	 * the last copy's map in flash_xdp_wire()). */
	if (conf->xdp_prog != NULL && p != &f->ports[0]) {
		ret = flash_xdp_detach_own(f);
		if (ret != 0) {
			FLASH_LOG(ERR, "%s: cannot make room for the next port's XDP program: %s",
				  f->iface, strerror(-ret));
			return ret;
		}
	}
	n_before = xsk_fds(before, RTE_DIM(before));
	/* The socket, and the UMEM for the first port, are made here. */
	ret = rte_eth_rx_queue_setup(p->port_id, 0, rx_desc, rte_socket_id(), NULL, f->pool);
	if (ret != 0) {
		FLASH_LOG(ERR,
			  "%s: RX queue setup failed: %s (UMEM registration or socket "
			  "bind refused; see the PMD's message above)",
			  p->name, rte_strerror(-ret));
		return ret;
	}
	flash_read_zero_copy(p, before, n_before);
	ret = rte_eth_tx_queue_setup(p->port_id, 0, tx_desc, rte_socket_id(), NULL);
	if (ret != 0) {
		FLASH_LOG(ERR, "%s: TX queue setup failed: %s", p->name, rte_strerror(-ret));
		return ret;
	}
	return 0;
}

static bool
is_pow2(uint16_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

/* Everything after the ports exist: pool, sockets, ox_steer, start. */
static int
flash_bringup(struct ox_flash *f, const struct ox_flash_conf *conf)
{
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	unsigned int n_mbufs;
	uint16_t i;
	int ret;

	/* Each socket's fill ring, plus a full TX ring in flight per port. */
	n_mbufs = (unsigned int)f->n_ports *
			  (FLASH_MBUFS_PER_SOCKET + (conf->tx_desc ? conf->tx_desc : 2048)) +
		  conf->extra_mbufs + (rte_lcore_count() + 1) * FLASH_MBUF_CACHE * 2;
	snprintf(pool_name, sizeof(pool_name), "flash_%u", f->ifindex);
	f->pool = ox_flash_pool_create(pool_name, n_mbufs, rte_socket_id());
	if (f->pool == NULL) {
		FLASH_LOG(ERR, "cannot create a pool of %u mbufs (%u MB): %s", n_mbufs,
			  (unsigned int)((uint64_t)n_mbufs * 2560 >> 20), rte_strerror(rte_errno));
		ret = -ENOMEM;
		return ret;
	}
	ret = ox_flash_check_pool(f->pool);
	if (ret != 0)
		return ret;

	for (i = 0; i < f->n_ports; i++) {
		f->ports[i].xsk_fd = -1;
		ret = flash_setup_port(f, conf, &f->ports[i]);
		if (ret != 0) {
			ret = -EIO;
			return ret;
		}
	}
	if (conf->xdp_prog != NULL) {
		ret = flash_xdp_wire(f, conf);
		if (ret != 0)
			return ret;
	}
	for (i = 0; i < f->n_ports; i++) {
		ret = rte_eth_dev_start(f->ports[i].port_id);
		if (ret != 0) {
			FLASH_LOG(ERR, "%s: start failed: %s", f->ports[i].name,
				  rte_strerror(-ret));
			ret = -EIO;
			return ret;
		}
	}
	f->started = true;
	for (i = 0; i < f->n_ports; i++) {
		const struct ox_flash_port *p = &f->ports[i];

		FLASH_LOG(INFO, "port %u: %s:%u %s mode, %s UMEM, XDP %s", p->port_id, f->iface,
			  p->queue,
			  !p->zc_known	 ? "unknown"
			  : p->zero_copy ? "zero-copy"
					 : "copy",
			  ox_flash_umem_mode_str(f->umem_mode), f->xdp_mode);
	}
	return 0;
}

/* Nothing held yet: what ox_flash_destroy() may be called on. */
static void
flash_reset(struct ox_flash *f)
{
	memset(f, 0, sizeof(*f));
	f->lock_fd = -1;
	f->steer_cfg_fd = -1;
	f->steer_stats_fd = -1;
	f->xdp_mode = "none";
}

int
ox_flash_create(struct ox_flash *f, const struct ox_flash_conf *conf)
{
	int n_queues, ret;
	uint16_t i;

	flash_reset(f);
	if (conf == NULL || conf->iface == NULL || strlen(conf->iface) >= sizeof(f->iface))
		return -EINVAL;
	if ((conf->rx_desc != 0 && !is_pow2(conf->rx_desc)) ||
	    (conf->tx_desc != 0 && !is_pow2(conf->tx_desc))) {
		FLASH_LOG(ERR, "ring sizes must be powers of two (rx %u, tx %u)", conf->rx_desc,
			  conf->tx_desc);
		return -EINVAL;
	}
	snprintf(f->iface, sizeof(f->iface), "%s", conf->iface);
	f->ifindex = if_nametoindex(conf->iface);
	if (f->ifindex == 0) {
		FLASH_LOG(ERR, "interface %s does not exist", conf->iface);
		return -ENODEV;
	}
	if (conf->xdp_prog != NULL && conf->steer_ports[0] == 0) {
		FLASH_LOG(ERR, "an XDP steering program needs the UDP port to steer");
		return -EINVAL;
	}
	n_queues = ox_flash_detect_queues(conf->iface);
	if (n_queues < 0)
		return n_queues;
	if (conf->n_queues != 0) {
		if (conf->start_queue + conf->n_queues > n_queues) {
			FLASH_LOG(ERR, "%s has %d queues; queues %u..%u asked for", conf->iface,
				  n_queues, conf->start_queue,
				  conf->start_queue + conf->n_queues - 1);
			return -ERANGE;
		}
		n_queues = conf->n_queues;
	} else {
		if (conf->start_queue >= n_queues)
			return -EINVAL;
		n_queues -= conf->start_queue;
	}
	if (n_queues > OX_FLASH_MAX_QUEUES)
		n_queues = OX_FLASH_MAX_QUEUES;

	ret = flash_lock(f);
	if (ret != 0)
		return ret;
	if (conf->xdp_prog != NULL) {
		ret = flash_xdp_check(f, conf);
		if (ret != 0)
			goto fail;
	}

	/* Shared UMEM first; the stock PMD refuses it at probe. */
	f->umem_mode = conf->no_shared_umem ? OX_FLASH_UMEM_PER_QUEUE : OX_FLASH_UMEM_SHARED;
	for (i = 0; i < n_queues; i++) {
		ret = flash_probe_port(f, conf, conf->start_queue + i,
				       f->umem_mode == OX_FLASH_UMEM_SHARED);
		if (ret != 0 && i == 0 && f->umem_mode == OX_FLASH_UMEM_SHARED) {
			ret = flash_probe_port(f, conf, conf->start_queue, false);
			if (ret == 0) {
				f->umem_mode = OX_FLASH_UMEM_PER_QUEUE;
				FLASH_LOG(WARNING,
					  "net_af_xdp has no shared UMEM here; FLASH uses "
					  "one UMEM per queue over one mempool (still no copy "
					  "between ports)");
			}
		}
		if (ret != 0) {
			FLASH_LOG(ERR, "%s queue %u: net_af_xdp probe failed (%s)", conf->iface,
				  conf->start_queue + i, rte_strerror(-ret));
			ret = -EIO;
			goto fail;
		}
	}

	ret = flash_bringup(f, conf);
	if (ret != 0)
		goto fail;
	return 0;
fail:
	ox_flash_destroy(f);
	return ret;
}

/* One adopted port's devargs: iface, queue, shared_umem, xdp_prog. */
static int
flash_adopt_args(struct ox_flash *f, struct ox_flash_port *p, char *xdp_prog, size_t len,
		 bool *shared)
{
	static const char *const keys[] = {
		"iface",       "start_queue", "queue_count", "shared_umem", "xdp_prog",
		"busy_budget", "force_copy",  "use_cni",     NULL,
	};
	struct rte_eth_dev_info info;
	const struct rte_devargs *da;
	struct rte_kvargs *kv;
	const char *v;
	int ret = -EINVAL;

	if (rte_eth_dev_info_get(p->port_id, &info) != 0 || info.device == NULL)
		return -ENODEV;
	da = rte_dev_devargs(info.device);
	if (da == NULL || da->args == NULL)
		return -EINVAL;
	kv = rte_kvargs_parse(da->args, keys);
	if (kv == NULL)
		return -EINVAL;
	v = rte_kvargs_get(kv, "iface");
	if (v == NULL || strlen(v) >= sizeof(f->iface)) {
		FLASH_LOG(ERR, "%s: no iface= in its arguments", p->name);
		goto out;
	}
	if (f->iface[0] == '\0')
		snprintf(f->iface, sizeof(f->iface), "%s", v);
	else if (strcmp(f->iface, v) != 0) {
		FLASH_LOG(ERR, "net_af_xdp ports on %s and %s: FLASH takes one interface", f->iface,
			  v);
		goto out;
	}
	v = rte_kvargs_get(kv, "queue_count");
	if (v != NULL && atoi(v) != 1) {
		FLASH_LOG(ERR,
			  "%s: queue_count=%s; FLASH wants one port per queue "
			  "(queue_count=1)",
			  p->name, v);
		goto out;
	}
	v = rte_kvargs_get(kv, "start_queue");
	p->queue = v != NULL ? (uint16_t)atoi(v) : 0;
	v = rte_kvargs_get(kv, "shared_umem");
	*shared = v != NULL && atoi(v) == 1;
	v = rte_kvargs_get(kv, "xdp_prog");
	if (v != NULL)
		snprintf(xdp_prog, len, "%s", v);
	ret = 0;
out:
	rte_kvargs_free(kv);
	return ret;
}

int
ox_flash_adopt(struct ox_flash *f, const struct ox_flash_conf *conf)
{
	struct ox_flash_conf c = *conf;
	char xdp_prog[PATH_MAX] = "", first_prog[PATH_MAX] = "";
	struct rte_eth_dev_info info;
	bool shared, all_shared = true;
	uint16_t port_id;
	int ret;

	flash_reset(f);
	RTE_ETH_FOREACH_DEV(port_id)
	{
		struct ox_flash_port *p;

		if (rte_eth_dev_info_get(port_id, &info) != 0 ||
		    strcmp(info.driver_name, "net_af_xdp") != 0)
			continue;
		if (f->n_ports == OX_FLASH_MAX_QUEUES)
			return -E2BIG;
		p = &f->ports[f->n_ports];
		p->port_id = port_id;
		p->xsk_fd = -1;
		rte_eth_dev_get_name_by_port(port_id, p->name);
		xdp_prog[0] = '\0';
		ret = flash_adopt_args(f, p, xdp_prog, sizeof(xdp_prog), &shared);
		if (ret != 0)
			return ret;
		if (f->n_ports == 0)
			snprintf(first_prog, sizeof(first_prog), "%s", xdp_prog);
		else if (strcmp(first_prog, xdp_prog) != 0)
			return -EINVAL;
		all_shared &= shared;
		f->n_ports++;
	}
	if (f->n_ports == 0)
		return -ENODEV;
	f->ifindex = if_nametoindex(f->iface);
	if (f->ifindex == 0) {
		FLASH_LOG(ERR, "interface %s does not exist", f->iface);
		return -ENODEV;
	}
	f->umem_mode = all_shared ? OX_FLASH_UMEM_SHARED : OX_FLASH_UMEM_PER_QUEUE;
	c.iface = f->iface;
	c.xdp_prog = first_prog[0] ? first_prog : NULL;
	if (c.xdp_prog == NULL)
		FLASH_LOG(WARNING,
			  "%s: the vdevs name no xdp_prog=: libxdp's default program "
			  "takes every packet of each queue, not just the OxTunnel port",
			  f->iface);
	ret = flash_lock(f);
	if (ret == 0 && c.xdp_prog != NULL)
		ret = flash_xdp_check(f, &c);
	if (ret == 0)
		ret = flash_bringup(f, &c);
	if (ret != 0)
		ox_flash_destroy(f);
	return ret;
}

int
ox_flash_destroy(struct ox_flash *f)
{
	uint16_t i;

	/* Stop every port before closing any: closing one detaches the XDP
	 * program from the whole interface. */
	if (f->started)
		for (i = 0; i < f->n_ports; i++)
			rte_eth_dev_stop(f->ports[i].port_id);
	f->started = false;
	for (i = f->n_ports; i-- > 0;) {
		rte_eth_dev_close(f->ports[i].port_id);
		rte_eal_hotplug_remove("vdev", f->ports[i].name);
	}
	f->n_ports = 0;
	flash_xdp_release(f);
	/* Mbufs still in the fill rings went down with the sockets. */
	rte_mempool_free(f->pool);
	f->pool = NULL;
	flash_unlock(f);
	return 0;
}
