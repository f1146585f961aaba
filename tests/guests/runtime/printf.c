/* A small printf for the serial console: %d %i %u %x %X %c %s %p %%, the
 * ll length modifier on d/u/x, a field width with '0' or '-' flags. '\n'
 * goes out as "\r\n". */
#include "rt.h"

struct spec {
  int width;
  char pad;
  int left;
};

static void emit(char c) {
  if (c == '\n') serial_putc('\r');
  serial_putc(c);
}

static void emit_padded(const char* s, uint32_t len, const struct spec* sp) {
  int fill = sp->width > (int)len ? sp->width - (int)len : 0;
  if (!sp->left) {
    /* Zero padding goes after a sign. */
    if (sp->pad == '0' && len && *s == '-') {
      emit(*s++);
      --len;
    }
    while (fill-- > 0) emit(sp->pad);
  }
  while (len--) emit(*s++);
  if (sp->left)
    while (fill-- > 0) emit(' ');
}

static void emit_number(uint64_t v, unsigned base, int negative, int upper, const struct spec* sp) {
  char buf[24];
  int n = sizeof buf;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    uint32_t r;
    v = udiv64(v, base, &r);
    buf[--n] = digits[r];
  } while (v);
  if (negative) buf[--n] = '-';
  emit_padded(buf + n, (uint32_t)(sizeof buf - n), sp);
}

void vprintf(const char* fmt, va_list ap) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      emit(*fmt);
      continue;
    }
    ++fmt;
    struct spec sp = {0, ' ', 0};
    for (;; ++fmt) {
      if (*fmt == '0') {
        sp.pad = '0';
      } else if (*fmt == '-') {
        sp.left = 1;
      } else {
        break;
      }
    }
    while (*fmt >= '0' && *fmt <= '9') sp.width = sp.width * 10 + (*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l') {
      ++longs;
      ++fmt;
    }
    switch (*fmt) {
      case 'd':
      case 'i': {
        int64_t v = longs >= 2 ? va_arg(ap, int64_t) : va_arg(ap, int32_t);
        emit_number(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 10, v < 0, 0, &sp);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v = longs >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
        emit_number(v, *fmt == 'u' ? 10 : 16, 0, *fmt == 'X', &sp);
        break;
      }
      case 'p':
        emit('0');
        emit('x');
        sp.pad = '0';
        sp.width = 8;
        emit_number((uint32_t)va_arg(ap, void*), 16, 0, 0, &sp);
        break;
      case 'c': {
        char c = (char)va_arg(ap, int);
        emit_padded(&c, 1, &sp);
        break;
      }
      case 's': {
        const char* s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        emit_padded(s, str_len(s), &sp);
        break;
      }
      case '%':
        emit('%');
        break;
      case 0:
        return;
      default:
        emit('%');
        emit(*fmt);
        break;
    }
  }
}

void printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
}
