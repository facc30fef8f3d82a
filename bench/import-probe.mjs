// Preloaded into a start by cold-start.ts (node --import): appends every module URL the
// process resolves to the file IMPORT_PROBE_OUT names, so the bench can list which
// engine packages a start loaded.
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.IMPORT_PROBE_OUT;
if (out) {
  registerHooks({
    resolve(specifier, context, next) {
      const result = next(specifier, context);
      if (result.url.includes('/node_modules/')) appendFileSync(out, `${result.url}\n`);
      return result;
    },
  });
}
