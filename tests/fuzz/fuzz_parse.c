/*
 * libFuzzer target for the configuration parser (master/parse.y).
 *
 * The input is written to a temporary file and parsed as mezited.conf.
 * If it parses, what print_config() makes of it must parse again and
 * print the same (else abort: printconf and the grammar disagree); then
 * both are freed.  Host names are not
 * looked up (parse_set_resolve(0)): a fuzzer must not wait on DNS.  An
 * include or a certificate may name any file; the parser takes regular
 * files of bounded size only and detects an include of itself, so that
 * cannot hang.
 *
 * The parser's error messages would flood the output: log.c writes them
 * to stderr, which is pointed at /dev/null here.  libFuzzer and the
 * sanitizers keep the real descriptor 2.  Set FUZZ_PARSE_VERBOSE=1 to
 * see the messages.  Run from the top directory, so that the seeds'
 * relative paths to tests/config resolve.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "master/mezited.h"

int	 LLVMFuzzerInitialize(int *, char ***);
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	 path[] = "/tmp/fuzz_parse.XXXXXX";
static char	 path2[] = "/tmp/fuzz_parse.XXXXXX";
static int	 fd = -1, fd2 = -1;
static FILE	*devnull;

static void
cleanup(void)
{
	if (fd != -1)
		(void)unlink(path);
	if (fd2 != -1)
		(void)unlink(path2);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*v;

	log_init(1, LOG_DAEMON);
	parse_set_resolve(0);

	if ((devnull = fopen("/dev/null", "w")) == NULL) {
		perror("/dev/null");
		abort();
	}
	v = getenv("FUZZ_PARSE_VERBOSE");
	if (v == NULL || strcmp(v, "1") != 0)
		stderr = devnull;	/* glibc: stderr is a variable */

	if ((fd = mkstemp(path)) == -1 || (fd2 = mkstemp(path2)) == -1) {
		perror("mkstemp");
		abort();
	}
	if (atexit(cleanup) != 0)
		abort();
	return (0);
}

static void
write_file(int wfd, const void *data, size_t size)
{
	size_t	 off = 0;
	ssize_t	 n;

	if (ftruncate(wfd, 0) == -1)
		abort();
	while (off < size) {
		n = pwrite(wfd, (const uint8_t *)data + off, size - off, off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			abort();
		}
		off += n;
	}
}

/* A malloc'ed string of what print_config() prints. */
static char *
printed(struct mezited_conf *conf, size_t *len)
{
	char	*buf = NULL;
	FILE	*f;

	if ((f = open_memstream(&buf, len)) == NULL)
		abort();
	print_config(f, conf);
	if (fclose(f) != 0)
		abort();
	return (buf);
}

static void
print_twice(struct mezited_conf *conf)
{
	struct mezited_conf	*conf2;
	char			*first, *second;
	size_t			 len, len2;

	first = printed(conf, &len);
	write_file(fd2, first, len);
	if ((conf2 = parse_config(path2)) == NULL)
		abort();	/* printed config does not parse */
	second = printed(conf2, &len2);
	if (len != len2 || memcmp(first, second, len) != 0)
		abort();	/* ...or not to the same */
	config_free(conf2);
	free(first);
	free(second);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mezited_conf	*conf;

	write_file(fd, data, size);
	if ((conf = parse_config(path)) == NULL)
		return (0);
	print_twice(conf);
	config_free(conf);
	return (0);
}
