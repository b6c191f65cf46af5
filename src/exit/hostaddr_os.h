/* Address-change notification, one implementation per OS (hostaddr_linux.c). */
#ifndef UM_EXIT_HOSTADDR_OS_H
#define UM_EXIT_HOSTADDR_OS_H

#include <stdbool.h>

/* A non-blocking descriptor that becomes readable when an interface address
 * is added or removed, or a negative UM_E* code when there is none. */
int um_hostaddr_os_open(void);
/* Reads everything pending; true when anything was (or may have been lost). */
bool um_hostaddr_os_drain(int fd);
void um_hostaddr_os_close(int fd);

#endif
