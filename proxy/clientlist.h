/*
 * clientlist - the admin's /clients view: one listing of every worker's
 * client connections, each line written by the worker that owns the
 * session, on its own thread, and handed back to the admin (main thread)
 * through an eventfd. Nothing here touches a session from another thread.
 */
#ifndef SG_CLIENTLIST_H
#define SG_CLIENTLIST_H

#include <stddef.h>

struct sg_clientlist;
struct sg_core;

/*
 * A listing that expects an answer from n_workers workers. The caller owns
 * the one reference returned; every worker the listing is posted to takes
 * its own (sg_worker_post_clientlist). NULL if no eventfd could be made.
 */
struct sg_clientlist *sg_clientlist_new(int n_workers);
void sg_clientlist_ref(struct sg_clientlist *l);
void sg_clientlist_unref(struct sg_clientlist *l);
/* Becomes readable once every worker has answered. */
int sg_clientlist_fd(const struct sg_clientlist *l);
/* On worker w's thread: add one line per session of w. */
void sg_clientlist_answer(struct sg_clientlist *l, struct sg_core *w);
/* On worker w's thread when it will never answer (its loop has ended). */
void sg_clientlist_skip(struct sg_clientlist *l);
/*
 * The text so far (malloc'd, caller frees), its length in *len, and in
 * *missing how many workers have not answered.
 */
char *sg_clientlist_text(struct sg_clientlist *l, size_t *len, int *missing);

#endif
