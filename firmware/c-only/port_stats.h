/* What port.c counts (port builds only): calls of the two port functions, and how deeply they
   nest. */
#ifndef PORT_STATS_H
#define PORT_STATS_H

#include <stdint.h>

extern volatile uint32_t port_enters;
extern volatile uint32_t port_exits;
extern volatile uint32_t port_depth;
extern volatile uint32_t port_max_depth;

#endif
