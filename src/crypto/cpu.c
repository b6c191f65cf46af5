/* AES hardware detection. x86: CPUID leaf 1, ECX bit 25 (AES-NI) and bit 1
 * (PCLMULQDQ). aarch64: HWCAP_AES and HWCAP_PMULL. Others: no. */
#include "crypto/aead.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
bool um_cpu_has_aes(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    return (c & (1u << 25)) && (c & (1u << 1));
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define UM_HWCAP_AES   (1ul << 3)
#define UM_HWCAP_PMULL (1ul << 4)
bool um_cpu_has_aes(void)
{
    unsigned long h = getauxval(AT_HWCAP);
    return (h & UM_HWCAP_AES) && (h & UM_HWCAP_PMULL);
}
#else
bool um_cpu_has_aes(void)
{
    return false;
}
#endif
