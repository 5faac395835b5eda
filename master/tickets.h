/*
 * Session ticket keys.  The supervisor makes them from the system's
 * random generator, keeps them in memory only and sends them to the
 * master, which seals and opens TLS session tickets with them.  Two are
 * live: the current one seals new tickets, the previous one still opens
 * the tickets it sealed.  Every copy is wiped when it is dropped.
 */

#ifndef MEZITE_TICKETS_H
#define MEZITE_TICKETS_H

#include <stdint.h>

#define TICKET_NAME_LEN		16	/* in the ticket: its key */
#define TICKET_AES_LEN		32	/* AES-256-CBC */
#define TICKET_HMAC_LEN		32	/* HMAC-SHA256 */

/* "tls ticket lifetime": the time a key seals tickets. */
#define TICKET_LIFETIME_DEFAULT	(2 * 3600)
#define TICKET_LIFETIME_MIN	1
/* Two lifetimes, the tickets' hint, fit in TLS 1.3's week. */
#define TICKET_LIFETIME_MAX	(3 * 86400)

struct ticket_key {
	uint8_t		 name[TICKET_NAME_LEN];
	uint8_t		 aes[TICKET_AES_LEN];
	uint8_t		 hmac[TICKET_HMAC_LEN];
};

/* IMSG_TICKET_KEYS, supervisor -> master. */
struct ticket_keys {
	uint32_t		 n;	/* live: 0 (tickets off), 1, 2 */
	uint32_t		 pad;
	struct ticket_key	 key[2];	/* [0] seals, [1] only opens */
};

#endif /* MEZITE_TICKETS_H */
