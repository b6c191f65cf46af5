/* GeoIP tables for geoip:CC routing rules (src/proxy/rules.h): address
 * ranges with their country, from
 *   - Tor's text files (Debian's tor-geoipdb): geoip lines
 *     "INTIPLOW,INTIPHIGH,CC" (IPv4 as decimal integers) and geoip6 lines
 *     "IPV6LOW,IPV6HIGH,CC"; '#' starts a comment line; both kinds may mix;
 *   - MaxMind DB files (.mmdb, through libmaxminddb): country.iso_code,
 *     else registered_country.iso_code.
 * um_geoip_load tells the two apart by content (the MaxMind metadata marker),
 * not by name. Text ranges are kept as sorted interval arrays (a lookup is a
 * binary search); ranges may not overlap. */
#ifndef UM_PROXY_GEOIP_H
#define UM_PROXY_GEOIP_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define UM_GEOIP_CC(a, b)  ((uint16_t)(((unsigned)(a) << 8) | (unsigned)(b)))
#define UM_GEOIP_FILES_MAX 8 /* MaxMind files in one table */

typedef struct um_geoip um_geoip_t;

int um_geoip_new(um_geoip_t **out);
void um_geoip_free(um_geoip_t *g); /* NULL is a no-op */

/* Adds the ranges of a Tor geoip/geoip6 text (n bytes, need not be
 * NUL-terminated); `path` names it in messages. Pure. Call um_geoip_finish
 * after the last file. 0, or UM_EINVAL / UM_ENOMEM with "PATH:LINE: ..." in
 * err. */
int um_geoip_parse_text(um_geoip_t *g, const char *path, const char *text, size_t n, char *err,
                        size_t errlen);
/* Sorts the ranges and refuses overlapping ones. 0 or UM_EINVAL with err. */
int um_geoip_finish(um_geoip_t *g, char *err, size_t errlen);
/* Reads a file (text or .mmdb, by content) into g; call um_geoip_finish
 * after the last. 0, or a UM_E* code with "PATH: ..." in err. */
int um_geoip_load(um_geoip_t *g, const char *path, char *err, size_t errlen);

/* The country of an IP address (IPv4-mapped IPv6 as IPv4): UM_GEOIP_CC of
 * two upper-case letters, or 0 when no range holds it. Text ranges first,
 * then the MaxMind files in the order loaded. */
uint16_t um_geoip_lookup(const um_geoip_t *g, const um_addr_t *ip);
/* Ranges from text files (IPv4 and IPv6), and MaxMind files loaded. */
size_t um_geoip_ranges(const um_geoip_t *g);
size_t um_geoip_mmdb_files(const um_geoip_t *g);

#endif
