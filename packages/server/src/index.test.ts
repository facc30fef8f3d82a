import { describe, expect, it } from 'vitest';
import { createApp } from './app/create-app.js';
import { loadConfig } from './config/index.js';

describe('@plexica/server as a library', () => {
  it('exports createApp and loadConfig through the package name, as the README shows', async () => {
    const server = await import('@plexica/server');
    expect(server.createApp).toBe(createApp);
    expect(server.loadConfig).toBe(loadConfig);
    expect(server.loadConfig({}, { port: 0 }).port).toBe(0);
  });
});
