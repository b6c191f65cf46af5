/* Readiness notification to a service manager (libsystemd's sd_notify(3),
 * the library opened on the first notification). Every call is a no-op
 * when the process was not started by a manager that asked for it
 * ($NOTIFY_SOCKET unset), so the server and client call these
 * unconditionally at their milestones:
 *   ready      the server listens on every address; the client's proxies,
 *              forwards and TUN device are up (not the first session: the
 *              client retries forever, applications' streams wait for it)
 *   reloading  SIGHUP received, the config is being read again; ready follows
 *   stopping   SIGTERM/SIGINT received, draining
 *   status     a one-line state shown by 'systemctl status'
 * A failed notification is logged at debug and otherwise ignored. */
#ifndef UM_APP_NOTIFY_H
#define UM_APP_NOTIFY_H

/* READY=1, with STATUS= from fmt when fmt is not NULL. */
void um_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 and MONOTONIC_USEC= (systemd 253 and later match the two to
 * tell a reload in progress; older managers ignore them). */
void um_notify_reloading(void);
/* STOPPING=1. */
void um_notify_stopping(void);
/* STATUS= alone. */
void um_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
