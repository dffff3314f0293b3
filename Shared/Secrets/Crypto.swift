import CCrypto

/// The cryptography Writeback needs, from OpenSSL's libcrypto: SHA-2 digests, HMAC, AES-256-GCM and
/// random bytes.
public enum Digest: Sendable {
    case sha256, sha384, sha512

    var algorithm: OpaquePointer {
        switch self {
        case .sha256: EVP_sha256()
        case .sha384: EVP_sha384()
        case .sha512: EVP_sha512()
        }
    }

    /// The digest of `data`.
    public func hash(_ data: some Collection<UInt8>) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let bytes = Array(data)
        let ok = bytes.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &output, &length, algorithm, nil)
        }
        precondition(ok == 1, "EVP_Digest failed")
        return Array(output.prefix(Int(length)))
    }

    /// The HMAC of `message` under `key`.
    public func authenticationCode(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let key = Array(key), message = Array(message)
        let result = key.withUnsafeBufferPointer { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                HMAC(algorithm, keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.baseAddress, messageBytes.count, &output, &length)
            }
        }
        precondition(result != nil, "HMAC failed")
        return Array(output.prefix(Int(length)))
    }
}

/// Compares two byte strings in time that depends on their length only.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 } }
}

/// `count` bytes from the operating system's random source, through OpenSSL's generator.
public func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    precondition(RAND_bytes(&bytes, Int32(count)) == 1, "RAND_bytes failed")
    return bytes
}

/// AES-256-GCM with a 12-byte random nonce and a 16-byte tag; a sealed value is nonce, ciphertext and
/// tag, one after the other.
public enum AESGCM {
    static let nonceSize = 12
    static let tagSize = 16

    public static func seal(_ plaintext: [UInt8], key: [UInt8], authenticating data: [UInt8]) throws(SecretError) -> [UInt8] {
        precondition(key.count == 32, "AES-256 takes a 32-byte key")
        let nonce = randomBytes(nonceSize)
        guard let context = EVP_CIPHER_CTX_new() else { throw SecretError("sealing failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: tagSize)
        var length: Int32 = 0, final: Int32 = 0
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              data.isEmpty || EVP_EncryptUpdate(context, nil, &length, data, Int32(data.count)) == 1,
              EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1,
              ciphertext.withUnsafeMutableBufferPointer({ EVP_EncryptFinal_ex(context, $0.baseAddress! + Int(length), &final) }) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagSize), &tag) == 1
        else { throw SecretError("sealing failed") }
        return nonce + ciphertext.prefix(Int(length + final)) + tag
    }

    public static func open(_ sealed: [UInt8], key: [UInt8], authenticating data: [UInt8]) throws(SecretError) -> [UInt8] {
        guard key.count == 32, sealed.count >= nonceSize + tagSize else { throw SecretError("the sealed value is too short") }
        let nonce = Array(sealed.prefix(nonceSize))
        let ciphertext = Array(sealed.dropFirst(nonceSize).dropLast(tagSize))
        var tag = Array(sealed.suffix(tagSize))
        guard let context = EVP_CIPHER_CTX_new() else { throw SecretError("opening failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0, final: Int32 = 0
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              data.isEmpty || EVP_DecryptUpdate(context, nil, &length, data, Int32(data.count)) == 1,
              EVP_DecryptUpdate(context, &plaintext, &length, ciphertext, Int32(ciphertext.count)) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagSize), &tag) == 1,
              plaintext.withUnsafeMutableBufferPointer({ EVP_DecryptFinal_ex(context, $0.baseAddress! + Int(length), &final) }) == 1
        else { throw SecretError("the sealed value did not authenticate") }
        return Array(plaintext.prefix(Int(length + final)))
    }
}
