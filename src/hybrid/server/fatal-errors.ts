/**
 * What a server process does with an error nothing caught: an uncaught exception or an unhandled promise rejection
 * means some state may be half-updated, so the process logs the error with its stack (one pino `fatal` line, so
 * the log shows what happened even where stderr is not kept) and exits with status 1. Its port closes with it: a
 * load balancer's health check sees it gone and a supervisor restarts it. Without this, Node prints the error to
 * stderr only, and any library that installed its own 'uncaughtException' handler (Emscripten's glue re-throws from
 * one) decides what is printed.
 */
import type { FastifyBaseLogger } from 'fastify';

/** The parts of `process` this needs (a test passes an EventEmitter). */
export interface FatalProcess {
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  off(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  off(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  exit(code: number): never | void;
}

/** A rejection reason as an Error (a rejection with a string or undefined has no stack: say what it was). */
function asError(reason: unknown): Error {
  if (reason instanceof Error) return reason;
  const e = new Error(`promise rejected with a non-Error value: ${typeof reason === 'string' ? reason : JSON.stringify(reason) ?? String(reason)}`);
  e.name = 'NonErrorRejection';
  return e;
}

/** Installs the handlers; returns a function that removes them (a server closed in-process). */
export function exitOnFatalErrors(log: FastifyBaseLogger, proc: FatalProcess = process): () => void {
  let exiting = false;
  const fatal = (what: string, err: Error) => {
    try {
      log.fatal({ err }, `${what}: ${err.message}; exiting`);
      // a server built with `logger: false` logs nothing: the stack still goes somewhere
      if (log.level === 'silent') process.stderr.write(`fhenet serve: ${what}; exiting\n${err.stack ?? err.message}\n`);
    } finally {
      if (!exiting) {
        exiting = true;
        proc.exit(1);
      }
    }
  };
  const onException = (err: Error) => fatal('uncaught exception', asError(err));
  const onRejection = (reason: unknown) => fatal('unhandled promise rejection', asError(reason));
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onRejection);
  return () => {
    proc.off('uncaughtException', onException);
    proc.off('unhandledRejection', onRejection);
  };
}
