/**
 * exitOnFatalErrors (src/hybrid/server/fatal-errors.ts) on a stand-in process: what it logs for an uncaught exception
 * and for rejections with and without an Error, that it exits once with status 1, and that removing it detaches it.
 * The real CLI process is tested in tests/cli/serve-process.test.ts.
 */
import { EventEmitter } from 'node:events';
import Fastify from 'fastify';
import { describe, expect, it, vi } from 'vitest';
import { type FatalProcess, exitOnFatalErrors } from '../../src/hybrid/server/fatal-errors.js';

function standIn(): { proc: FatalProcess & EventEmitter; exits: number[]; lines: { level: number; msg: string; err?: { type: string; message: string; stack: string } }[]; log: ReturnType<typeof Fastify>['log'] } {
  const exits: number[] = [];
  const proc = Object.assign(new EventEmitter(), { exit: (code: number) => void exits.push(code) }) as unknown as FatalProcess & EventEmitter;
  const lines: { level: number; msg: string }[] = [];
  const log = Fastify({ logger: { level: 'info', stream: { write: (s: string) => void lines.push(JSON.parse(s)) } } }).log;
  return { proc, exits, lines: lines as never, log };
}

describe('exitOnFatalErrors', () => {
  it('an uncaught exception: one fatal line with the message and stack, exit 1', () => {
    const s = standIn();
    exitOnFatalErrors(s.log, s.proc);
    s.proc.emit('uncaughtException', new TypeError('boom'));
    expect(s.exits).toEqual([1]);
    expect(s.lines).toHaveLength(1);
    expect(s.lines[0]!.level).toBe(60);
    expect(s.lines[0]!.msg).toBe('uncaught exception: boom; exiting');
    expect(s.lines[0]!.err?.type).toBe('TypeError');
    expect(s.lines[0]!.err?.stack).toMatch(/fatal-errors\.test\.ts:\d+/);
  });

  it('a rejection with a non-Error value says what the value was', () => {
    const s = standIn();
    exitOnFatalErrors(s.log, s.proc);
    s.proc.emit('unhandledRejection', { code: 42 });
    s.proc.emit('unhandledRejection', undefined);
    expect(s.lines.map((l) => l.msg)).toEqual([
      'unhandled promise rejection: promise rejected with a non-Error value: {"code":42}; exiting',
      'unhandled promise rejection: promise rejected with a non-Error value: undefined; exiting',
    ]);
    expect(s.exits).toEqual([1]); // exits once, however many faults follow
  });

  it('a silent logger: the stack goes to stderr', () => {
    const s = standIn();
    s.log.level = 'silent';
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      exitOnFatalErrors(s.log, s.proc);
      s.proc.emit('unhandledRejection', new Error('quiet'));
      expect(String(err.mock.calls[0]?.[0])).toMatch(/^fhenet serve: unhandled promise rejection; exiting\nError: quiet\n\s+at /);
    } finally {
      err.mockRestore();
    }
    expect(s.exits).toEqual([1]);
  });

  it('the returned function removes both handlers', () => {
    const s = standIn();
    exitOnFatalErrors(s.log, s.proc)();
    expect(s.proc.listenerCount('uncaughtException') + s.proc.listenerCount('unhandledRejection')).toBe(0);
  });
});
