/*
 * libFuzzer target for the receiving side of common/imsg.c.
 *
 * The input is what a hostile peer sends, and how:
 *
 *	byte 0		flags: bit 0 allows descriptors, bits 1-2 pick the
 *			reader's maxsize, bit 3 reads after every chunk
 *			(else the chunks pile up in the socket first)
 *	bytes 1-4	chunk specs, used in turn: (low 7 bits) + 1 is the
 *			chunk's length, bit 7 sends /dev/null along with it
 *	the rest	the byte stream itself
 *
 * Each chunk is one sendmsg on a socketpair, so the reader sees the stream
 * cut where the input says.  Then the peer closes its end and the reader
 * runs until EOF or error.  Every message is checked against what imsg.h
 * promises, then either forwarded to a sink imsgbuf or freed.  A leaked
 * descriptor shows as a higher lowest free descriptor after cleanup.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#include "fuzz.h"

#define FUZZ_SPECS	4
#define FUZZ_MAXSTREAM	65536
#define FUZZ_SINKMAX	64		/* forwarded messages kept at most */
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	 fuzz_setup(void);
static void	 fuzz_check(struct imsgbuf *, struct imsg *, ssize_t);
static int	 fuzz_drain(struct imsgbuf *, struct imsgbuf *);
static int	 fuzz_pump(struct imsgbuf *, struct imsgbuf *);
static void	 fuzz_leakcheck(void);

static int	 nullfd = -1;		/* sent along with chunks; sink's fd */
static int	 lowfd = -1;		/* lowest free descriptor when idle */

static const uint32_t maxsizes[] = {
	MAX_IMSGSIZE, IMSG_HEADER_SIZE, IMSG_HEADER_SIZE + 24, 300
};

static int
fuzz_setup(void)
{
	if (nullfd == -1)
		nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	return (nullfd);
}

/* What imsg_get promises about a message it returned. */
static void
fuzz_check(struct imsgbuf *ib, struct imsg *imsg, ssize_t n)
{
	unsigned char	*buf;
	size_t		 len;

	len = imsg_get_len(imsg);
	FUZZ_ASSERT((size_t)n == len + IMSG_HEADER_SIZE);
	FUZZ_ASSERT((size_t)n <= ib->maxsize);
	FUZZ_ASSERT(imsg->hdr.len == (uint32_t)n);
	FUZZ_ASSERT(ib->fdpass || imsg->fd == -1);
	FUZZ_ASSERT((len == 0) == (imsg->data == NULL));

	FUZZ_ASSERT((buf = malloc(len + 1)) != NULL);
	if (len == 0)
		FUZZ_ASSERT(imsg_get_data(imsg, buf, 0) == -1);
	else {
		FUZZ_ASSERT(imsg_get_data(imsg, buf, len) == 0);
		FUZZ_ASSERT(memcmp(buf, imsg->data, len) == 0);
		FUZZ_ASSERT(imsg_get_data(imsg, buf, len - 1) == -1);
	}
	FUZZ_ASSERT(imsg_get_data(imsg, buf, len + 1) == -1);
	FUZZ_ASSERT(errno == EBADMSG);
	free(buf);
}

/* Take every complete message; -1 once imsg_get fails. */
static int
fuzz_drain(struct imsgbuf *ib, struct imsgbuf *sink)
{
	struct imsg	 imsg;
	ssize_t		 n;
	int		 fd;

	while ((n = imsg_get(ib, &imsg)) > 0) {
		fuzz_check(ib, &imsg, n);
		if (imsg_get_type(&imsg) & 1) {
			/* sink's maxsize is the largest we pick for ib. */
			FUZZ_ASSERT(imsg_forward(sink, &imsg) == 0);
			FUZZ_ASSERT(imsg.fd == -1);
		} else if ((fd = imsg_get_fd(&imsg)) != -1) {
			FUZZ_ASSERT(imsg.fd == -1);
			FUZZ_ASSERT(close(fd) == 0);
		}
		imsg_free(&imsg);
		if (imsgbuf_queuelen(sink) > FUZZ_SINKMAX)
			imsgbuf_clear(sink);
	}
	return (n == 0 ? 0 : -1);
}

/* Read once and drain: 1 go on, 0 EOF, -1 error. */
static int
fuzz_pump(struct imsgbuf *ib, struct imsgbuf *sink)
{
	int	 r;

	if ((r = imsgbuf_read(ib)) == -1)
		return (-1);
	if (fuzz_drain(ib, sink) == -1)
		return (-1);
	return (r);
}

static void
fuzz_leakcheck(void)
{
	int	 fd;

	FUZZ_ASSERT((fd = dup(nullfd)) != -1);
	if (lowfd == -1 || fd < lowfd)
		lowfd = fd;
	/* Something this run opened is still open. */
	FUZZ_ASSERT(fd <= lowfd);
	FUZZ_ASSERT(close(fd) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imsgbuf	 ib, sink;
	const uint8_t	*specs, *p;
	size_t		 left, len, i, loops;
	uint8_t		 flags;
	int		 sv[2], withfd, alive = 1;

	if (size < 1 + FUZZ_SPECS)
		return (0);
	FUZZ_ASSERT(fuzz_setup() != -1);
	flags = data[0];
	specs = data + 1;
	p = data + 1 + FUZZ_SPECS;
	left = size - 1 - FUZZ_SPECS;
	if (left > FUZZ_MAXSTREAM)
		left = FUZZ_MAXSTREAM;

	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	FUZZ_ASSERT(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	FUZZ_ASSERT(imsgbuf_init(&ib, sv[1]) == 0);
	FUZZ_ASSERT(imsgbuf_init(&sink, nullfd) == 0);
	if (flags & 1)
		imsgbuf_allow_fdpass(&ib);
	FUZZ_ASSERT(imsgbuf_set_maxsize(&ib, maxsizes[(flags >> 1) & 3]) ==
	    0);

	for (i = 0; alive && left > 0; i++) {
		len = (specs[i % FUZZ_SPECS] & 0x7f) + 1;
		withfd = (specs[i % FUZZ_SPECS] & 0x80) != 0;
		if (len > left)
			len = left;
		while (fuzz_sendmsg(sv[0], p, len, withfd ? nullfd : -1) == -1) {
			/* Full: let the reader make room.  Else give up. */
			if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
			    fuzz_pump(&ib, &sink) != 1) {
				alive = 0;
				break;
			}
		}
		p += len;
		left -= len;
		if (alive && (flags & 8) && fuzz_pump(&ib, &sink) != 1)
			alive = 0;
	}
	FUZZ_ASSERT(close(sv[0]) == 0);

	/* Each round reads or takes bytes, so this ends well before. */
	for (loops = 0; alive; loops++) {
		FUZZ_ASSERT(loops <= size + 16);
		if (fuzz_pump(&ib, &sink) != 1)
			break;
	}

	imsgbuf_clear(&ib);
	imsgbuf_clear(&sink);
	FUZZ_ASSERT(close(sv[1]) == 0);
	fuzz_leakcheck();
	return (0);
}
