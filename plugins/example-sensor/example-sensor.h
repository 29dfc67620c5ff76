/* example-sensor.h: the sensor's guest interface (its register map), shared by the device
 * (example-sensor.c) and the guest kit's driver of it (guest/sensor-demo.c). The meaning of
 * each register is in example-sensor.c's header comment. */
#ifndef EXAMPLE_SENSOR_H
#define EXAMPLE_SENSOR_H

#define SENSOR_MAGIC 0x504d4554u /* "TEMP" */
#define SENSOR_VERSION 1
#define SENSOR_WINDOW 0x1000
#define SENSOR_INVALID 0x80000000u /* TEMP while a fault is present */
#define SENSOR_MODEL_LEN 32

enum {
	REG_MAGIC = 0x00,
	REG_VERSION = 0x04,
	REG_TEMP = 0x08,
	REG_THRESHOLD = 0x0c,
	REG_HYSTERESIS = 0x10,
	REG_CTRL = 0x14,
	REG_STATUS = 0x18,
	REG_OFFSET = 0x1c,
	REG_FAULT = 0x20,
	REG_RATE = 0x24,
	REG_SERIAL_LO = 0x28,
	REG_SERIAL_HI = 0x2c,
	REG_ALARMS = 0x30,
	REG_MODEL = 0x40,
};
#define CTRL_IRQ_EN 1u
#define STATUS_ALARM 1u
#define STATUS_FAULT 2u

#endif
