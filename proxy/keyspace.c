/* keyspace - placeholder until per-keyspace policy lands (issue 4). */
int sg_keyspace_placeholder_(void);
int sg_keyspace_placeholder_(void) { return 0; }
