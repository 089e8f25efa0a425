/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_FLASH_H
#define OX_FLASH_H
/**
 * @file
 * FLASH: Fast Linked AF_XDP Sockets.
 *
 * One DPDK net_af_xdp port per NIC queue of an interface, all of them over
 * one mbuf pool and, where the PMD supports it, one shared UMEM, so that a
 * packet received on any queue can be sent from any other without a copy.
 *
 * Where the PMD was built without shared UMEM (Debian 12's stock package),
 * every port registers its own UMEM over the same pool memory: packets still
 * move between ports without a copy, only the kernel's bookkeeping is per
 * queue. ox_flash_create() chooses and reports which.
 */
#include <stdbool.h>
#include <stdint.h>

#include <rte_dev.h>
#include <rte_mempool.h>

#include "ox_steer.h"

/** UDP ports ox_steer can hand to the sockets (OX_STEER_MAX_PORTS). */
#define OX_FLASH_MAX_STEER_PORTS 8

/** Most queues (and so ports) FLASH drives on one interface: what
 * ox_steer's socket map holds. */
#define OX_FLASH_MAX_QUEUES OX_STEER_MAX_QUEUES

/** How the ports of one FLASH instance register their UMEM. */
enum ox_flash_umem_mode {
	OX_FLASH_UMEM_SHARED = 0, /**< one UMEM for all ports (shared_umem=1) */
	OX_FLASH_UMEM_PER_QUEUE,  /**< one UMEM per port, all over one mempool */
};

/** Options of ox_flash_create(); zeroed fields take the documented default. */
struct ox_flash_conf {
	const char *iface;    /**< kernel interface name (required) */
	uint16_t n_queues;    /**< queues to drive; 0 = all, see ox_flash_detect_queues() */
	uint16_t start_queue; /**< first NIC queue */
	const char *xdp_prog; /**< drivers/xdp ox_steer object; NULL: libxdp's default */
	uint16_t steer_ports[OX_FLASH_MAX_STEER_PORTS]; /**< UDP ports ox_steer hands to the
							     sockets, 0 ends the list */
	bool xdp_replace;     /**< replace another party's XDP program on iface */
	bool force_copy;      /**< ask the kernel for copy mode */
	bool no_shared_umem;  /**< never try shared UMEM */
	int busy_budget;      /**< preferred busy-poll budget; 0 = PMD default, <0 = off */
	uint16_t rx_desc;     /**< RX ring size (power of two); 0 = PMD default */
	uint16_t tx_desc;     /**< TX ring size (power of two); 0 = PMD default */
	uint32_t extra_mbufs; /**< mbufs beyond what the sockets' rings hold */
};

/** One FLASH port: a net_af_xdp ethdev bound to one NIC queue. */
struct ox_flash_port {
	uint16_t port_id;		 /**< ethdev port */
	uint16_t queue;			 /**< NIC queue the socket is bound to */
	bool zero_copy;			 /**< the kernel bound the socket in zero-copy mode */
	bool zc_known;			 /**< zero_copy could be read from the socket */
	int xsk_fd;			 /**< the PMD's AF_XDP socket (not ours to close) */
	char name[RTE_DEV_NAME_MAX_LEN]; /**< vdev name, e.g. net_af_xdp_eth0_1 */
};

/** A FLASH instance: the ports of one interface and their shared pool. */
struct ox_flash {
	char iface[32];			   /**< interface name */
	unsigned int ifindex;		   /**< its index */
	enum ox_flash_umem_mode umem_mode; /**< what the PMD agreed to */
	struct rte_mempool *pool;	   /**< the one pool under every port's UMEM */
	uint16_t n_ports;		   /**< ports in ports[] */
	bool started;			   /**< ports were started */
	int lock_fd;			   /**< flock: one FLASH instance per interface */
	uint32_t xdp_prog_id;		   /**< attached XDP program, 0 if none */
	const char *xdp_mode;		   /**< "native", "generic", "offload" or "none" */
	int steer_cfg_fd;		   /**< ox_steer's configuration map, or -1 */
	int steer_stats_fd;		   /**< ox_steer's counters, or -1 */
	struct ox_flash_port ports[OX_FLASH_MAX_QUEUES]; /**< one per queue */
};

/**
 * Count the RX queues of an interface: the rx-* entries in
 * /sys/class/net/IF/queues, else `ethtool -l` combined channels, else 1.
 *
 * @param iface
 *   Interface name.
 * @return
 *   Queue count (>= 1), or -ENODEV if the interface does not exist.
 */
int ox_flash_detect_queues(const char *iface);

/**
 * Create, configure and start the FLASH ports of an interface.
 *
 * Probes one net_af_xdp vdev per queue, each with start_queue=i and
 * queue_count=1, creates one mbuf pool laid out as a single unpadded chunk
 * (what the PMD's UMEM registration assumes; checked), and sets every port's
 * RX queue up on that pool. Tries shared UMEM first; if the PMD refuses it
 * at probe, falls back to one UMEM per queue and logs one line saying so.
 * EAL must be initialised. On error nothing is left probed.
 *
 * @param f
 *   Instance to fill.
 * @param conf
 *   Options.
 * @return
 *   0, or -errno: -ENODEV interface missing, -EINVAL bad option, -ERANGE
 *   more queues asked for than the interface has, -EBUSY another process
 *   drives the interface, -EEXIST someone else's XDP program is attached
 *   (and conf->xdp_replace is not set), -ENOMEM no room for the pool, -EIO
 *   probe or port setup refused. Each is logged; what to do about it is
 *   the caller's to say.
 */
int ox_flash_create(struct ox_flash *f, const struct ox_flash_conf *conf);

/**
 * Take over net_af_xdp ports EAL already probed from --vdev arguments (as
 * usertools/flash-bind.py prints them: one per queue of one interface,
 * queue_count=1, optionally shared_umem=1 and xdp_prog=), and bring them
 * up as ox_flash_create() does. The interface, queues, UMEM mode and XDP
 * program come from the vdev arguments; conf supplies the rest.
 *
 * @param f
 *   Instance to fill.
 * @param conf
 *   Options; iface, n_queues, start_queue and xdp_prog are ignored.
 * @return
 *   0, -ENODEV if there is no net_af_xdp port, or -errno as ox_flash_create().
 */
int ox_flash_adopt(struct ox_flash *f, const struct ox_flash_conf *conf);

/**
 * Stop and close every port, remove the vdevs and free the pool.
 *
 * The PMD detaches the XDP program from the interface when a port closes.
 * Safe on a partially created or already destroyed instance.
 *
 * @param f
 *   Instance from ox_flash_create().
 * @return
 *   0.
 */
int ox_flash_destroy(struct ox_flash *f);

/**
 * Create an mbuf pool that net_af_xdp can register as UMEM: one chunk,
 * objects back to back with no padding, 2 KB data room. Any port may use
 * it; FLASH uses it for all of its ports.
 *
 * @param name
 *   Pool name.
 * @param n
 *   Number of mbufs.
 * @param socket
 *   NUMA socket.
 * @return
 *   The pool, or NULL with rte_errno set.
 */
struct rte_mempool *ox_flash_pool_create(const char *name, unsigned int n, int socket);

/**
 * Check that a pool is one chunk of objects with no padding between them,
 * so that populated_size x object size from its first byte covers all of
 * them (how net_af_xdp sizes the UMEM).
 *
 * @param mp
 *   Pool to check.
 * @return
 *   0 if the layout is safe, -EINVAL otherwise.
 */
int ox_flash_check_pool(struct rte_mempool *mp);

/**
 * Read ox_steer's counters, summed over CPUs: frames redirected to the
 * sockets and, for each reason, frames left to the kernel.
 *
 * @param f
 *   Instance whose ports were created with conf->xdp_prog.
 * @param out
 *   Out: one count per enum ox_steer_stat (see ox_steer.h).
 * @return
 *   0, or -ENOENT if the instance runs no ox_steer program.
 */
int ox_flash_steer_stats(const struct ox_flash *f, uint64_t out[OX_STEER_STAT_MAX]);

/** Names of ox_steer's counters, indexed by enum ox_steer_stat. */
extern const char *const ox_flash_steer_stat_names[OX_STEER_STAT_MAX];

/**
 * Name of a UMEM mode, for logs and telemetry.
 *
 * @param mode
 *   Mode.
 * @return
 *   "shared" or "per-queue".
 */
const char *ox_flash_umem_mode_str(enum ox_flash_umem_mode mode);

#endif /* OX_FLASH_H */
