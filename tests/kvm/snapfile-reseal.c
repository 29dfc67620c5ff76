/* snapfile-reseal FILE OFFSET BYTES...: writes the bytes (hex, e.g. 02 00 00 00) at OFFSET of a
 * .smolmachine file's header and seals the header again (its XXH3 checksum), so a test can make
 * a well-formed file that a restore must refuse for what it says (a newer format, another
 * arch, another CPU) rather than for being damaged. For tests only. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfile-int.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: snapfile-reseal FILE OFFSET HEXBYTE...\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r+b");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	uint8_t fixed[SF_HDR_FIXED];
	if (fread(fixed, 1, sizeof(fixed), f) != sizeof(fixed)) {
		fprintf(stderr, "%s: shorter than a header\n", argv[1]);
		return 1;
	}
	uint32_t hsize = (uint32_t)fixed[SF_OFF_HSIZE] | (uint32_t)fixed[SF_OFF_HSIZE + 1] << 8 |
	                 (uint32_t)fixed[SF_OFF_HSIZE + 2] << 16 |
	                 (uint32_t)fixed[SF_OFF_HSIZE + 3] << 24;
	if (hsize < SF_HDR_FIXED || hsize > (1u << 20)) {
		fprintf(stderr, "%s: header size %u\n", argv[1], hsize);
		return 1;
	}
	uint8_t *h = malloc(hsize);
	unsigned long off = strtoul(argv[2], NULL, 0);
	if (!h || fseek(f, 0, SEEK_SET) || fread(h, 1, hsize, f) != hsize ||
	    (off + (unsigned long)(argc - 3) > SF_OFF_HSUM && off < SF_OFF_HSUM + 8ul)) {
		fprintf(stderr, "%s: cannot read the header, or the bytes overlap its checksum\n",
		        argv[1]);
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		if (off >= hsize)
			return fprintf(stderr, "offset past the header\n"), 1;
		h[off++] = (uint8_t)strtoul(argv[i], NULL, 16);
	}
	uint64_t sum = sf_header_sum(h, hsize);
	for (int i = 0; i < 8; i++)
		h[SF_OFF_HSUM + i] = (uint8_t)(sum >> (8 * i));
	if (fseek(f, 0, SEEK_SET) || fwrite(h, 1, hsize, f) != hsize || fclose(f)) {
		perror(argv[1]);
		return 1;
	}
	free(h);
	return 0;
}
