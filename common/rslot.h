/*
 * rslot.h: Redis Cluster's key slots (the cluster specification, "Keys
 * distribution model"): CRC16 (XMODEM: polynomial 0x1021, initial 0, no
 * reflection) of the key, or of its hash tag, modulo 16384. The hash tag
 * is the part between the first '{' and the next '}' when that part is not
 * empty; keys with the same tag share a slot (hn:live:{7} and
 * hn:sess:{7}:…), which is what lets one widget's keys live on one node.
 */
#ifndef HN_RSLOT_H
#define HN_RSLOT_H

#include <stddef.h>
#include <stdint.h>

#define HN_SLOTS 16384

uint16_t hn_crc16(const char *p, size_t len);
/* The slot of a key (len bytes, any bytes). */
uint16_t hn_slot(const char *key, size_t len);

#endif
