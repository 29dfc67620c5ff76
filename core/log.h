/* log.h: the core's messages on stderr. */
#ifndef SMOLVM_LOG_H
#define SMOLVM_LOG_H

#include <stdarg.h>

#include <smolvm/sdk.h>

/** Current verbosity: messages above it are dropped (default SMOL_LOG_INFO). */
extern int log_level;

/** Prints "smolvm: <prefix>: message" at @p level (prefix may be NULL). */
void log_msg(int level, const char *prefix, const char *fmt, ...) SMOL_PRINTF(3, 4);
/** Same, with a va_list. */
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap);

#define log_err(...) log_msg(SMOL_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(SMOL_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_msg(SMOL_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(SMOL_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
