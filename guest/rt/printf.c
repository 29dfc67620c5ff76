/*
 * Small printf family: one formatter writing through a sink, used both for
 * the UART (printf/vprintf) and for buffers (snprintf/vsnprintf).
 *
 * Supported: %d %i %u %x %X %c %s %p %%; length modifiers h hh l ll z;
 * flags '-' (left-justify) and '0' (zero-pad); width as a number or '*';
 * precision ('.N' or '.*') for %s only. Unknown conversions are printed
 * verbatim.
 */
#include "guest.h"

struct sink {
	void (*put)(struct sink *s, char c);
	char *buf;
	size_t size; /* buffer sinks: capacity including the NUL */
	size_t len; /* characters produced so far (untruncated) */
};

static void sink_put(struct sink *s, char c)
{
	s->put(s, c);
	s->len++;
}

static void put_uart(struct sink *s, char c)
{
	(void)s;
	putc(c);
}

static void put_buf(struct sink *s, char c)
{
	if (s->size && s->len < s->size - 1)
		s->buf[s->len] = c;
}

static void pad(struct sink *s, int n, char c)
{
	while (n-- > 0)
		sink_put(s, c);
}

static void emit_str(struct sink *s, const char *str, int width, int prec, bool left)
{
	if (!str)
		str = "(null)";
	size_t n = prec >= 0 ? strnlen(str, (size_t)prec) : strlen(str);
	int fill = width > (int)n ? width - (int)n : 0;
	if (!left)
		pad(s, fill, ' ');
	for (size_t i = 0; i < n; i++)
		sink_put(s, str[i]);
	if (left)
		pad(s, fill, ' ');
}

static void emit_num(struct sink *s, uint64_t v, bool neg, unsigned base, bool upper,
                     const char *prefix, int width, bool left, bool zero)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);

	int plen = (int)strlen(prefix) + (neg ? 1 : 0);
	int fill = width > n + plen ? width - n - plen : 0;

	if (!left && !zero)
		pad(s, fill, ' ');
	if (neg)
		sink_put(s, '-');
	while (*prefix)
		sink_put(s, *prefix++);
	if (!left && zero)
		pad(s, fill, '0');
	while (n)
		sink_put(s, tmp[--n]);
	if (left)
		pad(s, fill, ' ');
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		const char *start = fmt++;
		bool left = false, zero = false;
		for (;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				zero = true;
			else
				break;
		}
		int width = 0;
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) {
				left = true;
				width = -width;
			}
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		int prec = -1;
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t */
		while (*fmt == 'l' || *fmt == 'h' || *fmt == 'z') {
			if (*fmt == 'l')
				lng = lng ? 2 : 1;
			else if (*fmt == 'z')
				lng = 3;
			fmt++; /* 'h'/'hh': the argument is promoted to int anyway */
		}

		uint64_t u;
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v;
			if (lng == 2)
				v = va_arg(ap, long long);
			else if (lng == 1 || lng == 3)
				v = va_arg(ap, long);
			else
				v = va_arg(ap, int);
			u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			emit_num(s, u, v < 0, 10, false, "", width, left, zero);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
			if (lng == 2)
				u = va_arg(ap, unsigned long long);
			else if (lng == 1)
				u = va_arg(ap, unsigned long);
			else if (lng == 3)
				u = va_arg(ap, size_t);
			else
				u = va_arg(ap, unsigned int);
			emit_num(s, u, false, *fmt == 'u' ? 10 : 16, *fmt == 'X', "", width, left,
			         zero);
			break;
		case 'p':
			u = (uintptr_t)va_arg(ap, void *);
			emit_num(s, u, false, 16, false, "0x", width, left, zero);
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);
			if (!left)
				pad(s, width - 1, ' ');
			sink_put(s, c);
			if (left)
				pad(s, width - 1, ' ');
			break;
		}
		case 's': emit_str(s, va_arg(ap, const char *), width, prec, left); break;
		case '%': sink_put(s, '%'); break;
		default: /* unknown or truncated conversion: print it as is */
			while (start <= fmt && *start)
				sink_put(s, *start++);
			if (!*fmt)
				return;
			break;
		}
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .put = put_buf, .buf = buf, .size = size, .len = 0 };
	format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { .put = put_uart, .buf = NULL, .size = 0, .len = 0 };
	format(&s, fmt, ap);
	return (int)s.len;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
