/* Golden vectors of the generated codecs: reads lines from stdin and
 * answers each on stdout, so the test can compare them with the Python end.
 * Field values are 64-bit numbers (signed as two's complement, floats as
 * their IEEE bits).
 *   E OPCODE V1 V2 ...   -> the request struct encoded, as hex
 *   D OPCODE HEX         -> the reply struct decoded, as numbers
 *   H OPCODE FLAGS ID N  -> a frame header encoded, as hex */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ox_protocol.h"

static void print_hex(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", bytes[i]);
    printf("\n");
}

int main(void)
{
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *cursor = line + 2;
        unsigned opcode = (unsigned)strtoul(cursor, &cursor, 0);
        const struct ox_op_info *op = ox_op_info((uint16_t)opcode);
        uint8_t bytes[256] = {0};
        uint64_t values[16] = {0};
        if (line[0] == 'H') {
            unsigned flags = (unsigned)strtoul(cursor, &cursor, 0);
            unsigned long id = strtoul(cursor, &cursor, 0);
            unsigned long n = strtoul(cursor, &cursor, 0);
            ox_encode_header(bytes, (uint16_t)opcode, (uint8_t)flags, (uint32_t)id, (uint32_t)n);
            print_hex(bytes, OX_HEADER_BYTES);
        } else if (op == NULL) {
            printf("unknown opcode\n");
        } else if (line[0] == 'E') {
            for (uint32_t i = 0; i < op->request_fields; i++)
                values[i] = strtoull(cursor, &cursor, 0);
            ox_golden_encode_request((uint16_t)opcode, values, bytes);
            print_hex(bytes, op->request_bytes);
        } else if (line[0] == 'D') {
            while (*cursor == ' ')
                cursor++;
            for (uint32_t i = 0; i < op->reply_bytes; i++) {
                char pair[3] = {cursor[2 * i], cursor[2 * i + 1], 0};
                bytes[i] = (uint8_t)strtoul(pair, NULL, 16);
            }
            ox_golden_decode_reply((uint16_t)opcode, bytes, values);
            for (uint32_t i = 0; i < op->reply_fields; i++)
                printf("%s%llu", i ? " " : "", (unsigned long long)values[i]);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}
