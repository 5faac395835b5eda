/*
 * Framed IPC over UNIX sockets with file descriptor passing.
 *
 * The API follows OpenBSD's imsg (7.7 and later): a message is a fixed
 * header followed by at most maxsize - header bytes of payload, and may
 * carry one file descriptor.  Receiving uses MSG_CMSG_CLOEXEC; a truncated
 * control message, an unexpected descriptor or a bad header is an error
 * that the caller answers by dropping the peer.  The one exception is a
 * descriptor the kernel could not install because we had none left: its
 * message comes without it, and imsg_get_fd_lost() says so.
 */

#ifndef MEZITE_IMSG_H
#define MEZITE_IMSG_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#define IMSG_HEADER_SIZE	sizeof(struct imsg_hdr)
#define MAX_IMSGSIZE		16384
#define IMSG_MAXSIZE_LIMIT	(1024 * 1024)

struct imsg_hdr {
	uint32_t	 type;
	uint32_t	 len;		/* header included; IMSG_FD_MARK flags an fd */
	uint32_t	 peerid;
	uint32_t	 pid;
};

#define IMSG_FD_MARK		0x80000000U

struct imsg_wbuf;
struct imsg_fd;

struct imsgbuf {
	TAILQ_HEAD(, imsg_wbuf)	 wq;		/* messages waiting to be sent */
	uint32_t		 wqlen;
	TAILQ_HEAD(, imsg_fd)	 fds;		/* received, not yet claimed */
	unsigned char		*rbuf;		/* bytes read, not yet parsed */
	size_t			 rpos;		/* where those bytes start */
	size_t			 rlen;
	size_t			 rsize;
	uint32_t		 maxsize;	/* header included */
	int			 fd;
	int			 fdpass;	/* accept descriptors */
	int			 poisoned;	/* bad input: fail from now on */
	int			 wipe;		/* zero what held bytes */
	pid_t			 pid;
};

struct imsg {
	struct imsg_hdr	 hdr;
	int		 fd;		/* -1 if none */
	int		 fd_lost;	/* it had one; we had no room for it */
	void		*data;		/* NULL if no payload */
};

int	 imsgbuf_init(struct imsgbuf *, int);
void	 imsgbuf_allow_fdpass(struct imsgbuf *);
void	 imsgbuf_set_wipe(struct imsgbuf *);
int	 imsgbuf_set_maxsize(struct imsgbuf *, uint32_t);
int	 imsgbuf_read(struct imsgbuf *);
int	 imsgbuf_write(struct imsgbuf *);
int	 imsgbuf_flush(struct imsgbuf *);
void	 imsgbuf_clear(struct imsgbuf *);
uint32_t imsgbuf_queuelen(struct imsgbuf *);

ssize_t	 imsg_get(struct imsgbuf *, struct imsg *);
int	 imsg_compose(struct imsgbuf *, uint32_t, uint32_t, pid_t, int,
	    const void *, size_t);
int	 imsg_forward(struct imsgbuf *, struct imsg *);
void	 imsg_free(struct imsg *);

uint32_t imsg_get_type(struct imsg *);
uint32_t imsg_get_id(struct imsg *);
pid_t	 imsg_get_pid(struct imsg *);
size_t	 imsg_get_len(struct imsg *);
int	 imsg_get_fd(struct imsg *);
int	 imsg_get_fd_lost(struct imsg *);
int	 imsg_get_data(struct imsg *, void *, size_t);

#endif /* MEZITE_IMSG_H */
