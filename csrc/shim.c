/*
 * coracle-shim: the parent of a container's init process, so its exit status
 * survives the node agent (model: containerd-shim, conmon).
 *
 *   coracle-shim EXIT_FILE PID_FILE -- runc ARGS...
 *
 * ARGS hold `create ... --pid-file PID_FILE ID`.  Process tree:
 *
 *   agent -> shim (original)          waits on a pipe, exits with runc's status
 *              `-> monitor            setsid, child subreaper, outlives the agent
 *                    `-> runc create  exits once the container is created;
 *                                     its init is reparented to the monitor
 *
 * The monitor waits for the container init (the pid in PID_FILE), reaping any
 * other orphans on the way, then writes EXIT_FILE atomically (EXIT_FILE.tmp,
 * fsync, rename) as "<code>\n<finished unix time ns>\n"; code is the exit code
 * or 128+signal.  If runc create fails the monitor writes nothing.
 *
 * stdin is inherited from the agent (/dev/null) and passed through to the
 * container.  The container's stdout and stderr are two pipes the monitor
 * reads; it writes each line to its own stdout (the container's log file,
 * opened O_APPEND by the agent) in the CRI format
 *
 *   <RFC3339Nano UTC> stdout|stderr F|P <text>\n
 *
 * F ends a line, P is a piece of one (longer than LINE_MAX_BYTES, or the
 * last bytes before EOF without a newline); nodeagent/crilog.py reads it.
 * If runc create fails, what it wrote to the pipes is dropped.  Every other
 * fd is closed so the shim pins nothing of the agent's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHIM_FAIL 125 /* our own failure, before or around runc */
#define LINE_MAX_BYTES 16384

static void die(const char *what)
{
	/* stderr is the container log: keep it to one recognisable line */
	fprintf(stderr, "coracle-shim: %s: %s\n", what, strerror(errno));
	_exit(SHIM_FAIL);
}

/* Close every fd >= 3 (close_range is in kernel >= 5.9; walk /proc otherwise). */
static void close_other_fds(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (fd >= 3 && fd != self)
			close(fd);
	}
	closedir(d);
}

static int encode_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return SHIM_FAIL;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void write_exit_file(const char *path, int code)
{
	struct timespec ts;
	char tmp[4096], line[64];
	clock_gettime(CLOCK_REALTIME, &ts);
	int len = snprintf(line, sizeof line, "%d\n%lld\n", code,
			   (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		_exit(SHIM_FAIL);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open exit file");
	if (write_all(fd, line, (size_t)len) < 0 || fsync(fd) < 0)
		die("write exit file");
	close(fd);
	if (rename(tmp, path) < 0)
		die("rename exit file");
}

static pid_t read_pid_file(const char *path)
{
	FILE *f = fopen(path, "re");
	long pid = 0;
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* One of the container's output streams: its pipe and the unfinished line. */
struct stream {
	const char *name;
	int fd; /* -1 once at EOF */
	size_t len;
	char buf[LINE_MAX_BYTES];
};

static void emit(const struct stream *s, const char *text, size_t len, char tag)
{
	static char line[LINE_MAX_BYTES + 128];
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line, sizeof line, "%s.%09ldZ %s %c ", when, ts.tv_nsec, s->name, tag);
	memcpy(line + n, text, len);
	line[n + len] = '\n';
	/* one write per line: O_APPEND keeps lines whole; a failed write loses the line, not the container */
	write_all(STDOUT_FILENO, line, (size_t)n + len + 1);
}

/* Read what the pipe has; write out every complete line.  At EOF flush the rest as P. */
static void pump(struct stream *s)
{
	ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (s->len > 0)
			emit(s, s->buf, s->len, 'P');
		s->len = 0;
		close(s->fd);
		s->fd = -1;
		return;
	}
	s->len += (size_t)n;
	size_t start = 0;
	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] == '\n') {
			emit(s, s->buf + start, i - start, 'F');
			start = i + 1;
		}
	}
	if (start == 0 && s->len == sizeof s->buf) {
		emit(s, s->buf, s->len, 'P');
		start = s->len;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
}

/* The monitor: runs runc create, reports its status on `report`, then waits. */
static void monitor(const char *exit_file, const char *pid_file, char **argv, int report)
{
	if (setsid() < 0)
		die("setsid");
	/* orphans below us (runc's container init) are reparented here, not to pid 1 */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("prctl(PR_SET_CHILD_SUBREAPER)");
	/* the agent may be killed with its process group; we must outlive it */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);

	static struct stream out = {.name = "stdout"}, err = {.name = "stderr"};
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		die("pipe");
	pid_t runc = fork();
	if (runc < 0)
		die("fork runc");
	if (runc == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		/* dup2 clears O_CLOEXEC: runc passes these on to the container's init */
		if (dup2(po[1], STDOUT_FILENO) < 0 || dup2(pe[1], STDERR_FILENO) < 0)
			die("dup2");
		execvp(argv[0], argv); /* `report` is O_CLOEXEC: runc never holds it */
		die("exec runc");
	}
	close(po[1]);
	close(pe[1]);
	out.fd = po[0];
	err.fd = pe[0];
	int status;
	while (waitpid(runc, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid runc");
	int code = encode_status(status);
	write_all(report, (const char *)&code, sizeof code);
	close(report);
	if (chdir("/") < 0) /* never pin the agent's cwd (a bundle dir, a mount) */
		die("chdir /");
	if (code != 0)
		_exit(code);

	pid_t init = read_pid_file(pid_file);
	if (init <= 0) {
		errno = EINVAL;
		die("read pid file");
	}
	/* copy output until both pipes are at EOF and init is reaped; reap other orphans on the way */
	int init_code = -1, grace = 0;
	while (out.fd >= 0 || err.fd >= 0 || init_code < 0) {
		struct pollfd fds[2] = {{.fd = out.fd, .events = POLLIN}, {.fd = err.fd, .events = POLLIN}};
		int ready = (out.fd >= 0 || err.fd >= 0) ? poll(fds, 2, 200) : 0;
		if (ready > 0) {
			if (out.fd >= 0 && fds[0].revents)
				pump(&out);
			if (err.fd >= 0 && fds[1].revents)
				pump(&err);
		}
		for (;;) {
			pid_t p = waitpid(-1, &status, (out.fd >= 0 || err.fd >= 0) ? WNOHANG : 0);
			if (p < 0 && errno == EINTR)
				continue;
			if (p < 0 && init_code < 0) /* ECHILD: init was never ours; record that we could not tell */
				init_code = 255;
			if (p <= 0)
				break;
			if (p == init)
				init_code = encode_status(status);
		}
		/* init is gone (its PID namespace with it): the pipes close at once unless
		 * something outside holds them; stop waiting for that after ~2 s */
		if (init_code >= 0 && ready == 0 && ++grace > 10)
			break;
	}
	write_exit_file(exit_file, init_code);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "usage: coracle-shim EXIT_FILE PID_FILE -- runc ARGS...\n");
		return 2;
	}
	close_other_fds();
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(pipefd[0]);
		monitor(argv[1], argv[2], argv + 4, pipefd[1]);
	}
	close(pipefd[1]);
	int code;
	ssize_t n;
	do
		n = read(pipefd[0], &code, sizeof code);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof code) {
		/* the monitor died before runc finished: reap it, report failure */
		waitpid(child, NULL, 0);
		return SHIM_FAIL;
	}
	return code;
}
