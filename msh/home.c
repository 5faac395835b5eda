/*
 * The user's Mezite directory, ~/.mezite: the key, the certificates,
 * the last proxy and the proxies' certificates seen before.
 *
 * The directory is opened once and every file is reached through that
 * descriptor, never through a path that could be swapped between the
 * check and the use.  As ssh(1) does with ~/.ssh, msh refuses a
 * directory or file that is a symbolic link, belongs to someone else
 * or that others may write, and a private key that others may read.
 * Files are replaced whole: a temporary file is written, flushed to
 * disk and renamed over the old one.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msh.h"

static int	 home_path(char *, size_t);

/* Why a file or directory may not be used, or NULL if it may. */
const char *
mode_check(const struct stat *sb, uid_t uid, enum mode_kind kind)
{
	if (S_ISLNK(sb->st_mode))
		return ("is a symbolic link");
	if (kind == MODE_DIR) {
		if (!S_ISDIR(sb->st_mode))
			return ("is not a directory");
	} else if (!S_ISREG(sb->st_mode))
		return ("is not a regular file");
	if (sb->st_uid != uid)
		return ("belongs to another user");
	if (sb->st_mode & (S_IWGRP | S_IWOTH))
		return ("is writable by group or others");
	if (kind == MODE_SECRET && (sb->st_mode & (S_IRWXG | S_IRWXO)))
		return ("is accessible by group or others");
	return (NULL);
}

/* $MEZITE_HOME, or .mezite in the user's home directory. */
static int
home_path(char *buf, size_t len)
{
	struct passwd	*pw;
	const char	*home;

	if ((home = getenv("MEZITE_HOME")) != NULL && *home != '\0') {
		if (strlcpy(buf, home, len) >= len) {
			warnx("MEZITE_HOME is too long");
			return (-1);
		}
		return (0);
	}
	if ((home = getenv("HOME")) == NULL || *home == '\0') {
		if ((pw = getpwuid(getuid())) == NULL) {
			warnx("who are you? (uid %u)", (unsigned)getuid());
			return (-1);
		}
		home = pw->pw_dir;
	}
	if ((size_t)snprintf(buf, len, "%s/.mezite", home) >= len) {
		warnx("home directory name too long");
		return (-1);
	}
	return (0);
}

/*
 * Open the directory, making it if create is set.  0: open; 1: it does
 * not exist (and create is not set); -1: refused or failed, with a
 * warning.
 */
int
home_open(struct home *h, int create)
{
	struct stat	 sb;
	const char	*why;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	h->uid = getuid();
	if (home_path(h->path, sizeof(h->path)) == -1)
		return (-1);
	if (lstat(h->path, &sb) == -1) {
		if (errno != ENOENT) {
			warn("%s", h->path);
			return (-1);
		}
		if (!create)
			return (1);
		if (mkdir(h->path, 0700) == -1) {
			warn("mkdir %s", h->path);
			return (-1);
		}
	}
	if ((h->fd = open(h->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if (errno == ELOOP || errno == ENOTDIR)
			warnx("%s is a symbolic link or not a directory",
			    h->path);
		else
			warn("%s", h->path);
		return (-1);
	}
	if (fstat(h->fd, &sb) == -1) {
		warn("%s", h->path);
		home_close(h);
		return (-1);
	}
	if ((why = mode_check(&sb, h->uid, MODE_DIR)) != NULL) {
		warnx("%s %s", h->path, why);
		home_close(h);
		return (-1);
	}
	return (0);
}

void
home_close(struct home *h)
{
	if (h->fd != -1)
		close(h->fd);
	h->fd = -1;
}

/*
 * Read a whole file, at most HOME_MAXFILE bytes, NUL-terminated.
 * 0: read; 1: it does not exist; -1: refused or failed, with a
 * warning.  A secret's buffer is for the caller to wipe.
 */
int
home_read(struct home *h, const char *name, enum mode_kind kind,
    char **bufp, size_t *lenp)
{
	struct stat	 sb;
	const char	*why;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = openat(h->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return (1);
		if (errno == ELOOP)
			warnx("%s/%s is a symbolic link", h->path, name);
		else
			warn("%s/%s", h->path, name);
		return (-1);
	}
	if (fstat(fd, &sb) == -1) {
		warn("%s/%s", h->path, name);
		goto fail;
	}
	if ((why = mode_check(&sb, h->uid, kind)) != NULL) {
		warnx("%s/%s %s", h->path, name, why);
		goto fail;
	}
	if (sb.st_size > HOME_MAXFILE) {
		warnx("%s/%s is too large", h->path, name);
		goto fail;
	}
	/* The size was only a hint: the file may have grown since. */
	if ((buf = malloc(HOME_MAXFILE + 1)) == NULL) {
		warn(NULL);
		goto fail;
	}
	for (;;) {
		if ((n = read(fd, buf + len, HOME_MAXFILE + 1 - len)) == -1) {
			if (errno == EINTR)
				continue;
			warn("%s/%s", h->path, name);
			goto fail;
		}
		if (n == 0)
			break;
		len += n;
		if (len > HOME_MAXFILE) {
			warnx("%s/%s is too large", h->path, name);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return (0);
 fail:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	close(fd);
	return (-1);
}

/*
 * Whether home_write() may replace the file: it is missing or a
 * regular file.  0: yes; -1: no, with a warning.
 */
int
home_replaceable(struct home *h, const char *name)
{
	struct stat	 sb;

	if (fstatat(h->fd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return (0);
		warn("%s/%s", h->path, name);
		return (-1);
	}
	if (S_ISLNK(sb.st_mode) || !S_ISREG(sb.st_mode)) {
		warnx("%s/%s %s: not replacing it", h->path, name,
		    S_ISLNK(sb.st_mode) ? "is a symbolic link" :
		    "is not a regular file");
		return (-1);
	}
	return (0);
}

/*
 * Replace a file, mode 0600, with buf: write a temporary file beside
 * it, flush it to disk, rename it over the old one and flush the
 * directory.  A symbolic link or anything but a regular file in its
 * place is refused.  0: written; -1: failed, with a warning.
 */
int
home_write(struct home *h, const char *name, const void *buf, size_t len)
{
	char		 tmp[64];
	const char	*p = buf;
	ssize_t		 n;
	int		 fd = -1, tries;

	if (home_replaceable(h, name) == -1)
		return (-1);
	for (tries = 0; tries < 8 && fd == -1; tries++) {
		if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.%08x", name,
		    arc4random()) >= sizeof(tmp)) {
			warnx("%s: name too long", name);
			return (-1);
		}
		fd = openat(h->fd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST) {
			warn("%s/%s", h->path, tmp);
			return (-1);
		}
	}
	if (fd == -1) {
		warnx("%s: no free temporary name", h->path);
		return (-1);
	}
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			warn("%s/%s", h->path, tmp);
			goto fail;
		}
		p += n;
		len -= n;
	}
	if (fsync(fd) == -1) {
		warn("fsync %s/%s", h->path, tmp);
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		warn("close %s/%s", h->path, tmp);
		goto fail;
	}
	fd = -1;
	if (renameat(h->fd, tmp, h->fd, name) == -1) {
		warn("rename %s/%s", h->path, name);
		goto fail;
	}
	if (fsync(h->fd) == -1) {
		warn("fsync %s", h->path);
		return (-1);
	}
	return (0);
 fail:
	if (fd != -1)
		close(fd);
	if (unlinkat(h->fd, tmp, 0) == -1)
		warn("unlink %s/%s", h->path, tmp);
	return (-1);
}

/* 0: removed; 1: there was none; -1: failed, with a warning. */
int
home_remove(struct home *h, const char *name)
{
	if (unlinkat(h->fd, name, 0) == -1) {
		if (errno == ENOENT)
			return (1);
		warn("%s/%s", h->path, name);
		return (-1);
	}
	return (0);
}
