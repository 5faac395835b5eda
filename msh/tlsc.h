/*
 * tlsc.c: the TLS client of msh and mezd, on OpenSSL's libssl.
 */

#ifndef TLSC_H
#define TLSC_H

#include <sys/types.h>

#include <stddef.h>

#define TLSC_WANT_POLLIN	-2
#define TLSC_WANT_POLLOUT	-3

#define TLSC_SESSION_MAX	(16 * 1024)	/* a session in PEM */

struct tlsc;

struct tlsc	*tlsc_client(const char *, const char *, const char *,
		    size_t, const char *, size_t, char *, size_t);
int		 tlsc_set_session(struct tlsc *, const char *, size_t);
int		 tlsc_connect_socket(struct tlsc *, int, const char *);
int		 tlsc_handshake(struct tlsc *);
ssize_t		 tlsc_read(struct tlsc *, void *, size_t);
ssize_t		 tlsc_write(struct tlsc *, const void *, size_t);
int		 tlsc_close(struct tlsc *);
void		 tlsc_free(struct tlsc *);
const char	*tlsc_error(struct tlsc *);
const char	*tlsc_alpn_selected(struct tlsc *);
const char	*tlsc_peer_cert_hash(struct tlsc *);
int		 tlsc_resumed(struct tlsc *);
int		 tlsc_session_offered(struct tlsc *);
int		 tlsc_session_new(struct tlsc *);
char		*tlsc_session_pem(struct tlsc *, size_t *);

#endif /* TLSC_H */
