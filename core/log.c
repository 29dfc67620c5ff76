/* log.c: the core's messages on stderr, one write per message so threads do not interleave. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int log_level = SMOL_LOG_INFO;

void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
	static const char *const tags[] = { "error: ", "warning: ", "", "" };
	char buf[2048];
	int n;

	if (level > log_level)
		return;
	if (level < 0 || level > SMOL_LOG_DEBUG)
		level = SMOL_LOG_ERROR;
	n = snprintf(buf, sizeof(buf), "smolvm: %s%s%s", prefix ? prefix : "", prefix ? ": " : "",
	             tags[level]);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	if (len == 0 || buf[len - 1] != '\n')
		buf[len++] = '\n';
	if (write(STDERR_FILENO, buf, len) < 0) {
		/* nothing better to do */
	}
}

void log_msg(int level, const char *prefix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, prefix, fmt, ap);
	va_end(ap);
}
