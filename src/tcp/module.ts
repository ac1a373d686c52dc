/**
 * The `tcp` protocol: a plain relay. Nothing is read before routing (a tcp listener may carry any
 * protocol, server-first ones too), so every member is the interface's default: the route is chosen
 * at accept on the listener, port and client address, and the client's bytes wait in the kernel
 * until the upstream is connected.
 * @module
 */
import type { ProtocolModule } from "../protocol/module.ts";

export const TCP: ProtocolModule = {
  name: "tcp",
  speaksFirst: "unknown",
};
