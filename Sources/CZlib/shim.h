/* zlib (Debian's zlib1g-dev), for the CRC-32 of zip entries. */
#include <zlib.h>
