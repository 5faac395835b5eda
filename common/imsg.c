/*
 * Framed IPC over UNIX stream sockets with file descriptor passing.
 *
 * A message on the wire is a struct imsg_hdr in host byte order followed
 * by its payload; hdr.len counts both, and IMSG_FD_MARK in hdr.len says
 * that a descriptor travels with the message.  The sender attaches that
 * descriptor to the first byte of the message, so by the time the
 * receiver holds the whole message the descriptor has been queued too:
 * received descriptors wait in a FIFO and each marked message claims the
 * oldest one.
 *
 * A descriptor the kernel could not give us (we had none left: it says
 * MSG_CTRUNC and closes it) takes its place in the FIFO as a lost one,
 * so that its message still claims it and the messages after it claim
 * their own: the message comes out with no descriptor and
 * imsg_get_fd_lost() says why, and the stream stays in step.
 *
 * Read side: rbuf holds rlen unparsed bytes starting at rpos, and has room
 * for at least maxsize bytes once compacted, so a valid message always
 * fits.  Any malformed input poisons the imsgbuf: every later imsg_get
 * and imsgbuf_read fails with EBADMSG and the caller drops the peer.
 *
 * Write side: a queue of whole messages; the head may be partly sent (off).
 * A message's descriptor is closed as soon as any of its bytes are sent,
 * since the kernel then holds its own reference.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#define IMSG_FDQUEUE_MAX	16	/* received, not yet claimed */
#define IMSG_IOV_MAX		64	/* messages batched in one sendmsg */

struct imsg_wbuf {
	TAILQ_ENTRY(imsg_wbuf)	 entry;
	size_t			 len;		/* header included */
	size_t			 off;		/* bytes already sent */
	int			 fd;		/* -1 if none or sent */
	unsigned char		 buf[];
};

struct imsg_fd {
	TAILQ_ENTRY(imsg_fd)	 entry;
	int			 fd;		/* -1: lost on the way in */
};

static void	 imsg_closefd(int *);
static void	 imsg_freezero(void *, size_t);
static int	 imsg_enqueue(struct imsgbuf *, const struct imsg_hdr *, int,
		    const void *, size_t);
static int	 imsgbuf_hdr(struct imsgbuf *, struct imsg_hdr *);
static int	 imsgbuf_ready(struct imsgbuf *);
static int	 imsgbuf_prepare(struct imsgbuf *);
static int	 imsgbuf_queuefd(struct imsgbuf *, int);
static int	 imsgbuf_recvfds(struct imsgbuf *, struct msghdr *);
static void	 imsgbuf_consume(struct imsgbuf *, size_t);

/* Close a descriptor we own and forget it; errno is left as it was. */
static void
imsg_closefd(int *fdp)
{
	int	 saved_errno;

	if (*fdp < 0)
		return;
	saved_errno = errno;
	/* Nothing to retry: on Linux the descriptor is gone even on EINTR. */
	(void)close(*fdp);
	*fdp = -1;
	errno = saved_errno;
}

int
imsgbuf_init(struct imsgbuf *ib, int fd)
{
	if (fd < 0) {
		errno = EBADF;
		return (-1);
	}
	memset(ib, 0, sizeof(*ib));
	TAILQ_INIT(&ib->wq);
	TAILQ_INIT(&ib->fds);
	ib->rbuf = NULL;
	ib->maxsize = MAX_IMSGSIZE;
	ib->fd = fd;
	ib->pid = getpid();
	return (0);
}

void
imsgbuf_allow_fdpass(struct imsgbuf *ib)
{
	ib->fdpass = 1;
}

static void
imsg_freezero(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * The channel carries secrets (private keys): every buffer that held
 * message bytes, sent or received, is zeroed before it is freed or
 * reused.
 */
void
imsgbuf_set_wipe(struct imsgbuf *ib)
{
	ib->wipe = 1;
}

int
imsgbuf_set_maxsize(struct imsgbuf *ib, uint32_t maxsize)
{
	if (maxsize < IMSG_HEADER_SIZE || maxsize > IMSG_MAXSIZE_LIMIT) {
		errno = EINVAL;
		return (-1);
	}
	ib->maxsize = maxsize;
	return (0);
}

/*
 * Copy out the header of the first buffered message.  Returns 0 if fewer
 * than a header's worth of bytes are buffered, 1 if the header is valid,
 * -1 if it is not.
 */
static int
imsgbuf_hdr(struct imsgbuf *ib, struct imsg_hdr *hdr)
{
	uint32_t	 len;

	if (ib->rlen < IMSG_HEADER_SIZE)
		return (0);
	memcpy(hdr, ib->rbuf + ib->rpos, sizeof(*hdr));
	len = hdr->len & ~IMSG_FD_MARK;
	if (len < IMSG_HEADER_SIZE || len > ib->maxsize)
		return (-1);
	return (1);
}

/* Is there something imsg_get can act on without reading more? */
static int
imsgbuf_ready(struct imsgbuf *ib)
{
	struct imsg_hdr	 hdr;

	switch (imsgbuf_hdr(ib, &hdr)) {
	case 0:
		return (0);
	case 1:
		return (ib->rlen >= (hdr.len & ~IMSG_FD_MARK));
	default:
		return (1);
	}
}

/* Move the unparsed bytes to the front and make room for maxsize bytes. */
static int
imsgbuf_prepare(struct imsgbuf *ib)
{
	unsigned char	*p;

	if (ib->rpos > 0) {
		if (ib->rlen > 0)
			memmove(ib->rbuf, ib->rbuf + ib->rpos, ib->rlen);
		if (ib->wipe)
			explicit_bzero(ib->rbuf + ib->rlen, ib->rpos);
		ib->rpos = 0;
	}
	if (ib->rsize < ib->maxsize) {
		if (ib->wipe) {
			if ((p = malloc(ib->maxsize)) == NULL)
				return (-1);
			if (ib->rlen > 0)
				memcpy(p, ib->rbuf, ib->rlen);
			imsg_freezero(ib->rbuf, ib->rsize);
		} else if ((p = realloc(ib->rbuf, ib->maxsize)) == NULL)
			return (-1);
		ib->rbuf = p;
		ib->rsize = ib->maxsize;
	}
	return (0);
}

/* Queue a received descriptor (-1: a lost one); on failure it is closed. */
static int
imsgbuf_queuefd(struct imsgbuf *ib, int fd)
{
	struct imsg_fd	*ifd;
	size_t		 n = 0;

	TAILQ_FOREACH(ifd, &ib->fds, entry)
		n++;
	if (n >= IMSG_FDQUEUE_MAX) {
		imsg_closefd(&fd);
		errno = EBADMSG;
		return (-1);
	}
	if ((ifd = malloc(sizeof(*ifd))) == NULL) {
		imsg_closefd(&fd);
		return (-1);
	}
	ifd->fd = fd;
	TAILQ_INSERT_TAIL(&ib->fds, ifd, entry);
	return (0);
}

/*
 * Take the descriptors out of a received control buffer.  At most one is
 * expected; anything else is closed and reported as EBADMSG.  Truncated
 * with nothing in it: the buffer has room for two, so the kernel had one
 * for us and could not install it (EMFILE, ENFILE), and closed it.
 */
static int
imsgbuf_recvfds(struct imsgbuf *ib, struct msghdr *msg)
{
	struct cmsghdr	*cmsg;
	int		 fds[2] = { -1, -1 };
	int		 fd;
	unsigned char	*data, *end;
	size_t		 i, n, nfds = 0, payload, room;
	int		 bad = 0, lost = 0;

	if (msg->msg_flags & MSG_CTRUNC)
		lost = 1;
	end = (unsigned char *)msg->msg_control + msg->msg_controllen;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0)) {
			bad = 1;
			continue;
		}
		/* Never trust cmsg_len past the end of our buffer. */
		data = CMSG_DATA(cmsg);
		room = data < end ? (size_t)(end - data) : 0;
		payload = cmsg->cmsg_len - CMSG_LEN(0);
		if (payload > room) {
			bad = 1;
			payload = room;
		}
		n = payload / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, data + i * sizeof(int), sizeof(fd));
			if (nfds < sizeof(fds) / sizeof(fds[0]))
				fds[nfds++] = fd;
			else
				imsg_closefd(&fd);
		}
	}
	if (nfds > 1 || (nfds > 0 && !ib->fdpass) || (lost && nfds > 0) ||
	    (lost && !ib->fdpass))
		bad = 1;
	if (bad) {
		for (i = 0; i < nfds; i++)
			imsg_closefd(&fds[i]);
		errno = EBADMSG;
		return (-1);
	}
	if (nfds == 1)
		return (imsgbuf_queuefd(ib, fds[0]));
	if (lost)
		return (imsgbuf_queuefd(ib, -1));
	return (0);
}

int
imsgbuf_read(struct imsgbuf *ib)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	ssize_t		 n;

	if (ib->poisoned) {
		errno = EBADMSG;
		return (-1);
	}
	if (imsgbuf_ready(ib))
		return (1);
	if (imsgbuf_prepare(ib) == -1)
		return (-1);

	/* Not ready, so a valid message is incomplete: there is room. */
	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = ib->rbuf + ib->rlen;
	iov.iov_len = ib->rsize - ib->rlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);

	if ((n = recvmsg(ib->fd, &msg, MSG_CMSG_CLOEXEC)) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return (1);
		return (-1);
	}
	if (imsgbuf_recvfds(ib, &msg) == -1) {
		/* A descriptor was lost: the stream cannot be trusted. */
		ib->poisoned = 1;
		return (-1);
	}
	if (n == 0)
		return (0);
	ib->rlen += (size_t)n;
	return (1);
}

static void
imsgbuf_consume(struct imsgbuf *ib, size_t len)
{
	if (ib->wipe)
		explicit_bzero(ib->rbuf + ib->rpos, len);
	ib->rpos += len;
	ib->rlen -= len;
	if (ib->rlen == 0)
		ib->rpos = 0;
}

ssize_t
imsg_get(struct imsgbuf *ib, struct imsg *imsg)
{
	struct imsg_hdr	 hdr;
	struct imsg_fd	*ifd = NULL;
	size_t		 len, datalen;
	void		*data = NULL;

	if (ib->poisoned) {
		errno = EBADMSG;
		return (-1);
	}
	switch (imsgbuf_hdr(ib, &hdr)) {
	case 0:
		return (0);
	case 1:
		break;
	default:
		ib->poisoned = 1;
		errno = EBADMSG;
		return (-1);
	}
	len = hdr.len & ~IMSG_FD_MARK;
	if (ib->rlen < len)
		return (0);
	if (hdr.len & IMSG_FD_MARK) {
		if ((ifd = TAILQ_FIRST(&ib->fds)) == NULL) {
			ib->poisoned = 1;
			errno = EBADMSG;
			return (-1);
		}
	}
	datalen = len - IMSG_HEADER_SIZE;
	if (datalen > 0) {
		/* Nothing consumed yet: the caller may retry. */
		if ((data = malloc(datalen)) == NULL)
			return (-1);
		memcpy(data, ib->rbuf + ib->rpos + IMSG_HEADER_SIZE, datalen);
	}

	memset(imsg, 0, sizeof(*imsg));
	imsg->hdr = hdr;
	imsg->hdr.len = (uint32_t)len;
	imsg->data = data;
	imsg->fd = -1;
	if (ifd != NULL) {
		TAILQ_REMOVE(&ib->fds, ifd, entry);
		imsg->fd = ifd->fd;
		imsg->fd_lost = ifd->fd == -1;
		free(ifd);
	}
	imsgbuf_consume(ib, len);
	return ((ssize_t)len);
}

/* Queue one message; fd (if any) is ours from here on, even on failure. */
static int
imsg_enqueue(struct imsgbuf *ib, const struct imsg_hdr *hdr, int fd,
    const void *data, size_t datalen)
{
	struct imsg_wbuf	*wb;
	struct imsg_hdr		 h;
	size_t			 len;

	if (data == NULL && datalen > 0) {
		errno = EINVAL;
		goto fail;
	}
	if (datalen > ib->maxsize - IMSG_HEADER_SIZE) {
		errno = ERANGE;
		goto fail;
	}
	if (ib->wqlen == UINT32_MAX) {
		errno = ENOBUFS;
		goto fail;
	}
	len = IMSG_HEADER_SIZE + datalen;
	if ((wb = malloc(sizeof(*wb) + len)) == NULL)
		goto fail;

	h = *hdr;
	h.len = (uint32_t)len;
	if (fd >= 0)
		h.len |= IMSG_FD_MARK;
	memcpy(wb->buf, &h, sizeof(h));
	if (datalen > 0)
		memcpy(wb->buf + IMSG_HEADER_SIZE, data, datalen);
	wb->len = len;
	wb->off = 0;
	wb->fd = fd >= 0 ? fd : -1;
	TAILQ_INSERT_TAIL(&ib->wq, wb, entry);
	ib->wqlen++;
	return (0);

 fail:
	imsg_closefd(&fd);
	return (-1);
}

/* A pid of 0 stands for the pid recorded by imsgbuf_init. */
int
imsg_compose(struct imsgbuf *ib, uint32_t type, uint32_t peerid, pid_t pid,
    int fd, const void *data, size_t datalen)
{
	struct imsg_hdr	 hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.peerid = peerid;
	hdr.pid = (uint32_t)(pid == 0 ? ib->pid : pid);
	return (imsg_enqueue(ib, &hdr, fd, data, datalen));
}

int
imsg_forward(struct imsgbuf *ib, struct imsg *imsg)
{
	int	 fd;

	fd = imsg->fd;
	imsg->fd = -1;
	return (imsg_enqueue(ib, &imsg->hdr, fd, imsg->data,
	    imsg_get_len(imsg)));
}

int
imsgbuf_write(struct imsgbuf *ib)
{
	struct imsg_wbuf	*wb, *next;
	struct iovec		 iov[IMSG_IOV_MAX];
	struct msghdr		 msg;
	struct cmsghdr		*cmsg;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	ssize_t			 n;
	size_t			 left, rest;
	int			 niov;

	while ((wb = TAILQ_FIRST(&ib->wq)) != NULL) {
		memset(&msg, 0, sizeof(msg));
		niov = 0;
		/* The head's descriptor, if any, rides on its first byte. */
		TAILQ_FOREACH(wb, &ib->wq, entry) {
			if (niov == IMSG_IOV_MAX || (niov > 0 && wb->fd >= 0))
				break;
			iov[niov].iov_base = wb->buf + wb->off;
			iov[niov].iov_len = wb->len - wb->off;
			niov++;
		}
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)niov;

		wb = TAILQ_FIRST(&ib->wq);
		if (wb->fd >= 0) {
			memset(&cmsgbuf, 0, sizeof(cmsgbuf));
			msg.msg_control = cmsgbuf.buf;
			msg.msg_controllen = sizeof(cmsgbuf.buf);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cmsg), &wb->fd, sizeof(int));
		}

		if ((n = sendmsg(ib->fd, &msg, MSG_NOSIGNAL)) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return (0);
			return (-1);
		}
		if (n == 0)
			return (0);

		/* The kernel holds the descriptor now. */
		imsg_closefd(&wb->fd);

		left = (size_t)n;
		for (; wb != NULL && left > 0; wb = next) {
			next = TAILQ_NEXT(wb, entry);
			rest = wb->len - wb->off;
			if (left < rest) {
				wb->off += left;
				break;
			}
			left -= rest;
			TAILQ_REMOVE(&ib->wq, wb, entry);
			ib->wqlen--;
			imsg_closefd(&wb->fd);
			if (ib->wipe)
				imsg_freezero(wb, sizeof(*wb) + wb->len);
			else
				free(wb);
		}
	}
	return (0);
}

int
imsgbuf_flush(struct imsgbuf *ib)
{
	struct pollfd	 pfd;
	int		 r;

	while (ib->wqlen > 0) {
		if (imsgbuf_write(ib) == -1)
			return (-1);
		if (ib->wqlen == 0)
			break;
		pfd.fd = ib->fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if ((r = poll(&pfd, 1, -1)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		if (pfd.revents & POLLNVAL) {
			errno = EBADF;
			return (-1);
		}
		/* POLLERR and POLLHUP: the next write reports the error. */
	}
	return (0);
}

void
imsgbuf_clear(struct imsgbuf *ib)
{
	struct imsg_wbuf	*wb;
	struct imsg_fd		*ifd;

	while ((wb = TAILQ_FIRST(&ib->wq)) != NULL) {
		TAILQ_REMOVE(&ib->wq, wb, entry);
		imsg_closefd(&wb->fd);
		if (ib->wipe)
			imsg_freezero(wb, sizeof(*wb) + wb->len);
		else
			free(wb);
	}
	ib->wqlen = 0;
	while ((ifd = TAILQ_FIRST(&ib->fds)) != NULL) {
		TAILQ_REMOVE(&ib->fds, ifd, entry);
		imsg_closefd(&ifd->fd);
		free(ifd);
	}
	if (ib->wipe)
		imsg_freezero(ib->rbuf, ib->rsize);
	else
		free(ib->rbuf);
	ib->rbuf = NULL;
	ib->rpos = ib->rlen = ib->rsize = 0;
}

uint32_t
imsgbuf_queuelen(struct imsgbuf *ib)
{
	return (ib->wqlen);
}

void
imsg_free(struct imsg *imsg)
{
	free(imsg->data);
	imsg->data = NULL;
	imsg_closefd(&imsg->fd);
}

uint32_t
imsg_get_type(struct imsg *imsg)
{
	return (imsg->hdr.type);
}

uint32_t
imsg_get_id(struct imsg *imsg)
{
	return (imsg->hdr.peerid);
}

pid_t
imsg_get_pid(struct imsg *imsg)
{
	return ((pid_t)imsg->hdr.pid);
}

size_t
imsg_get_len(struct imsg *imsg)
{
	uint32_t	 len = imsg->hdr.len & ~IMSG_FD_MARK;

	if (len < IMSG_HEADER_SIZE)
		return (0);
	return (len - IMSG_HEADER_SIZE);
}

int
imsg_get_fd(struct imsg *imsg)
{
	int	 fd = imsg->fd;

	imsg->fd = -1;
	return (fd);
}

/* Whether the message's descriptor was lost on the way in. */
int
imsg_get_fd_lost(struct imsg *imsg)
{
	return (imsg->fd_lost);
}

int
imsg_get_data(struct imsg *imsg, void *buf, size_t len)
{
	if (buf == NULL || len == 0 || imsg->data == NULL ||
	    len != imsg_get_len(imsg)) {
		errno = EBADMSG;
		return (-1);
	}
	memcpy(buf, imsg->data, len);
	return (0);
}
