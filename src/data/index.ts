/** Data sets fhenet can download, verify and find: `fhenet data list | fetch | verify` (docs/data.md). */
export { dataDir, datasetDir } from './data-dir.js';
export { downloadFile, sha256File, type DownloadOptions } from './download.js';
export { ChecksumError, DataMissingError, DownloadError } from './errors.js';
export { CIFAR10, DATASETS, FASHION_MNIST, type DataFile, type DataForm, type DatasetSpec } from './registry.js';
export { datasetSpec, fetchDataset, storedForm, verifyDataset, type FetchOptions, type FetchResult, type VerifyResult } from './store.js';
