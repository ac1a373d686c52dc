/**
 * switchyard's entry point: parse the command line and run the command. Exit codes: 0 success,
 * 1 a configuration or start-up error (one clear line each), 2 a usage error.
 */
import { parseCommand, UsageError, HELP } from "./cli/args.ts";
import { loadConfig, ConfigError } from "./config/load.ts";
import { serve } from "./cli/serve.ts";
import { summary } from "./cli/validate.ts";
import { versionText } from "./cli/version.ts";
import { log } from "./log/logger.ts";

async function main(argv: readonly string[]): Promise<number | null> {
  const command = parseCommand(argv);
  switch (command.kind) {
    case "help":
      process.stdout.write(HELP);
      return 0;
    case "version":
      console.log(versionText());
      return 0;
    case "validate": {
      const config = loadConfig({ file: command.file, flags: command.flags, env: process.env });
      console.log(summary(config));
      return 0;
    }
    case "serve": {
      const load = () => loadConfig({ file: command.file, flags: command.flags, env: process.env });
      const config = load();
      log.configure(config.log.level, config.log.format);
      await serve(config, load);
      return null; // keep running until a signal
    }
  }
}

try {
  const code = await main(process.argv.slice(2));
  if (code !== null) process.exit(code);
} catch (e) {
  if (e instanceof ConfigError) {
    for (const line of e.lines) console.error(line);
    process.exit(1);
  }
  if (e instanceof UsageError) {
    console.error(`switchyard: ${e.message}\nRun "switchyard --help" for usage.`);
    process.exit(2);
  }
  console.error(`switchyard: ${(e as Error).message ?? e}`);
  process.exit(1);
}
