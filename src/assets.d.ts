// Files imported for their path or text; `bun build --compile` embeds them in the binary.
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*.jsonc" {
  const text: string;
  export default text;
}
