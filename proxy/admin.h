/*
 * admin - the operators' HTTP listener (evhttp) on the main thread:
 * /healthz, /readyz (false until the topology is known, and while draining)
 * and /metrics (Prometheus text, summed from every worker's counters).
 */
#ifndef SG_ADMIN_H
#define SG_ADMIN_H

#include <event2/event.h>

#include "config.h"

struct sg_worker;
struct sg_core;
struct sg_admin;

/* workers and their cores (cores[i] is workers[i]'s), n of each. */
struct sg_admin *sg_admin_new(struct event_base *base, const struct sg_config *cfg,
                              struct sg_worker **workers, struct sg_core *const *cores, int n,
                              char *err, size_t errlen);
void sg_admin_set_draining(struct sg_admin *a, int draining);
void sg_admin_free(struct sg_admin *a);

#endif
