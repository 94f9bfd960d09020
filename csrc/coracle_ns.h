/* Thin, errno-returning wrappers over the namespace and mount syscalls the
 * node agent needs.  Every function returns 0 on success or -errno.
 *
 * Kernel hazard: unshare(2) and setns(2) for the net, IPC and UTS namespaces
 * act on the calling OS thread only.  Callers run them on a dedicated thread
 * that exits afterwards (see nodeagent/sandbox.py), never on the event loop.
 */
#ifndef CORACLE_NS_H
#define CORACLE_NS_H

int coracle_unshare(int flags);
int coracle_setns(int fd, int nstype);
int coracle_mount(const char *source, const char *target, const char *fstype,
                  unsigned long flags, const char *data);
int coracle_umount2(const char *target, int flags);
int coracle_sethostname(const char *name);

/* Make new namespaces of the kinds in `flags` (CLONE_NEWNET, CLONE_NEWIPC,
 * CLONE_NEWUTS) for the calling thread and pin each one with a bind mount of
 * /proc/thread-self/ns/<kind> onto the matching path (NULL: not asked for).
 * The target files must exist.  `hostname`, if not NULL, is set in the new
 * UTS namespace.  On failure the mounts already made are undone. */
int coracle_pin_new_namespaces(int flags, const char *net_path,
                               const char *ipc_path, const char *uts_path,
                               const char *hostname);

#endif
