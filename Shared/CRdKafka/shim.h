#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* rd_kafka_producev is variadic, which Swift cannot call: a message with headers goes through this
   shim. librdkafka owns `headers` once it returns no error; on an error the caller still does. */
static inline rd_kafka_resp_err_t wb_kafka_produce_with_headers(
    rd_kafka_t *handle, rd_kafka_topic_t *topic, const void *payload, size_t length, const void *key, size_t keyLength,
    rd_kafka_headers_t *headers, void *opaque) {
    return rd_kafka_producev(
        handle, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)payload, length), RD_KAFKA_V_KEY(key, keyLength), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}
