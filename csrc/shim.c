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
 * stdin/stdout/stderr are inherited from the agent (the container's log file
 * and /dev/null): runc passes them through to the container.  Every other fd
 * is closed so the shim pins nothing of the agent's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

	pid_t runc = fork();
	if (runc < 0)
		die("fork runc");
	if (runc == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		execvp(argv[0], argv); /* `report` is O_CLOEXEC: runc never holds it */
		die("exec runc");
	}
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
	for (;;) {
		pid_t p = wait(&status);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0) {
			/* ECHILD: init was never ours; record that we could not tell */
			write_exit_file(exit_file, 255);
			_exit(0);
		}
		if (p == init) {
			write_exit_file(exit_file, encode_status(status));
			_exit(0);
		}
	}
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
