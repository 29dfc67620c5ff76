/* serial: what serial-in.c needs of serial-out.c; private to devices/serial. */
#ifndef SMOLVM_SERIAL_INT_H
#define SMOLVM_SERIAL_INT_H

#include "serial.h"

int serial_out_open(struct serial *s);
void serial_out_restored(struct serial *s, bool tx_blocked);
void serial_out_close(struct serial *s);

#endif
