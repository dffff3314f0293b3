// OpenSSL's libcrypto: AES-256-GCM, HMAC, SHA-2 and its random source.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
