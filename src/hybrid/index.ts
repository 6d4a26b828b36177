export * from './errors.js';
export * from './version.js';
export * from './backend.js';
export * from './deployment.js';
export * from './remote-client.js';
export * from './server/app.js';
export * from './hybrid-model.js';
