// SPDX-License-Identifier: Apache-2.0
/*
 * guest-crypto.c in C++: open a synthetic crypto device, create an AES-256-GCM security
 * association and seal one ESP-like payload in place, zero-copy, in the device's arena. The
 * device, the session and each arena buffer are released by their destructors.
 *
 *   make install                               # headers, libsynth.a/.so, libsynth.pc
 *   g++ -std=c++17 -O2 examples/guest-crypto.cc $(pkg-config --cflags --libs libsynth) -o guest-crypto
 *   ./guest-crypto /dev/shm/demo-crypto        # host side: a region path
 *   ./guest-crypto 0000:00:05.0                # inside a VM: a PCI address
 *
 * Prints the backend, the ciphertext and the tag (key=value lines, hex). Key, IV and payload are
 * those of guest-crypto.c, so both print the same ciphertext and tag.
 */
#include <synth/guest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

// A libsynth return value that is not 0: a negative errno or a positive SYNTH_ST_* status.
class Failure : public std::runtime_error {
public:
    Failure(const std::string &what, int rc)
        : std::runtime_error(what + ": " + (rc < 0 ? std::strerror(-rc) : synth_status_str(static_cast<uint32_t>(rc))))
    {
    }
};

void check(int rc, const std::string &what)
{
    if (rc != 0)
        throw Failure(what, rc);
}

struct DeviceClose {
    void operator()(synth_dev *dev) const { synth_dev_close(dev); }
};
using Device = std::unique_ptr<synth_dev, DeviceClose>;

Device open_device(const std::string &where)
{
    synth_dev *dev = nullptr;
    int rc = where.find('/') != std::string::npos ? synth_dev_open_path(where.c_str(), nullptr, &dev)
                                                  : synth_dev_open_pci(where.c_str(), nullptr, &dev);
    check(rc, "open " + where);
    return Device(dev);
}

// A crypto session on one queue; destroyed before the device closes (declare it after the device).
class Session {
public:
    Session(synth_queue *q, const synth_crypto_session_params &params) : q_(q)
    {
        check(synth_crypto_session_create(q_, &params, &id_), "session");
    }
    ~Session() { synth_crypto_session_destroy(q_, id_); }
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;
    uint32_t id() const { return id_; }

private:
    synth_queue *q_;
    uint32_t id_ = 0;
};

// A buffer in a queue's arena: the device reads and writes it in place.
class Buffer {
public:
    Buffer(synth_queue *q, uint32_t size) : q_(q), size_(size)
    {
        int64_t off = synth_buf_alloc(q_, size_);
        if (off < 0)
            throw Failure("arena buffer of " + std::to_string(size_) + " bytes", static_cast<int>(off));
        off_ = static_cast<uint32_t>(off);
    }
    ~Buffer() { synth_buf_free(q_, off_, size_); }
    Buffer(const Buffer &) = delete;
    Buffer &operator=(const Buffer &) = delete;
    uint32_t off() const { return off_; }
    uint32_t size() const { return size_; }
    uint8_t *data() const { return static_cast<uint8_t *>(synth_buf_ptr(q_, off_)); }

private:
    synth_queue *q_;
    uint32_t size_;
    uint32_t off_ = 0;
};

void print_hex(const char *label, const uint8_t *p, size_t n)
{
    std::printf("%s=", label);
    for (size_t i = 0; i < n; i++)
        std::printf("%02x", p[i]);
    std::printf("\n");
}

void seal(const std::string &where)
{
    static const char payload[] = "synthetic devices keep VNFs portable";
    static const uint8_t esp_header[8] = {0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x00, 0x07}; // SPI, seq
    const uint32_t len = sizeof(payload) - 1;

    Device dev = open_device(where);
    synth_dev_info info;
    synth_dev_get_info(dev.get(), &info);
    if (info.dev_class != SYNTH_CLASS_CRYPTO)
        throw std::runtime_error(where + ": not a crypto device");
    synth_queue *q = synth_dev_queue(dev.get(), 0);

    synth_crypto_session_params params{}; // zeroed, as the device wants unused fields
    params.alg = SYNTH_ALG_AES256_GCM;
    params.key_len = 32;
    params.iv_len = 12;
    params.tag_len = 16;
    for (uint8_t i = 0; i < 32; i++)
        params.key[i] = i;
    Session sa(q, params);

    Buffer data(q, len), aad(q, sizeof(esp_header)), iv(q, 12), tag(q, 16);
    std::memcpy(data.data(), payload, len);
    std::memcpy(aad.data(), esp_header, sizeof(esp_header));
    std::memset(iv.data(), 0x42, iv.size());
    check(synth_crypto_op(q, SYNTH_OP_CRYPTO_ENCRYPT, sa.id(), data.off(), data.off(), len, aad.off(), aad.size(),
                          iv.off(), tag.off()),
          "encrypt");

    std::printf("backend=%.*s\n", static_cast<int>(sizeof(info.backend)), info.backend);
    print_hex("ciphertext", data.data(), len);
    print_hex("tag", tag.data(), tag.size());
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s REGION-PATH | PCI-ADDRESS\n", argv[0]);
        return 2;
    }
    try {
        seal(argv[1]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
    return 0;
}
