/* SPDX-License-Identifier: Apache-2.0 */
/* Packet device class: placeholder until the class lands; every op is NOT_SUPPORTED. */
#include <string.h>

#include "host_pvt.h"
#include "synth/packet_core.h"

static int pkt_init(struct synth_hdev *d, const struct synth_hdev_params *p)
{
    (void)p;
    d->cls = d; /* no state yet */
    return 0;
}

static void pkt_fini(struct synth_hdev *d) { d->cls = NULL; }
static void pkt_reset(struct synth_hdev *d) { (void)d; }

static void pkt_process(struct synth_hdev *d, struct synth_hqueue *q, const struct synth_desc *in,
                         struct synth_cpl *out, unsigned n)
{
    (void)d;
    (void)q;
    for (unsigned i = 0; i < n; i++) {
        out[i].cookie = in[i].cookie;
        out[i].status = SYNTH_ST_NOT_SUPPORTED;
        out[i].flags = 0;
        out[i].result = 0;
    }
}

static const char *pkt_plugin_name(const struct synth_hdev *d) { (void)d; return "none"; }
static uint32_t pkt_sessions(const struct synth_hdev *d) { (void)d; return 0; }

const struct synth_class_ops synth_packet_class = {
    .dev_class = SYNTH_CLASS_PACKET,
    .features = 0,
    .init = pkt_init,
    .fini = pkt_fini,
    .reset = pkt_reset,
    .process = pkt_process,
    .plugin_name = pkt_plugin_name,
    .sessions = pkt_sessions,
};
