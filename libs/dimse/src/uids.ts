/**
 * UIDs the DIMSE layer negotiates: application context, transfer syntaxes, service SOP classes.
 */
import { STORAGE_SOP_CLASSES } from './storage-sop-classes.js';

export { STORAGE_SOP_CLASSES, STORAGE_SOP_CLASS_NAMES } from './storage-sop-classes.js';

export const APPLICATION_CONTEXT_NAME = '1.2.840.10008.3.1.1.1';

/**
 * Implementation Class UID announced in associations and written into Part 10 headers
 * (a UUID-derived UID, PS3.5 B.2: no registered root needed). Change it with the version name.
 */
export const DEFAULT_IMPLEMENTATION_CLASS_UID = '2.25.63559784516811140816240715761979906937';
/** Implementation Version Name (max 16 chars). */
export const DEFAULT_IMPLEMENTATION_VERSION_NAME = 'VNA_DIMSE_1';

export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  EncapsulatedUncompressedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.98',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JPEGBaseline: '1.2.840.10008.1.2.4.50',
  JPEGExtended: '1.2.840.10008.1.2.4.51',
  JPEGLossless: '1.2.840.10008.1.2.4.57',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  JPEG2000MCLossless: '1.2.840.10008.1.2.4.92',
  JPEG2000MC: '1.2.840.10008.1.2.4.93',
  MPEG2MPML: '1.2.840.10008.1.2.4.100',
  MPEG2MPMLF: '1.2.840.10008.1.2.4.100.1',
  MPEG2MPHL: '1.2.840.10008.1.2.4.101',
  MPEG2MPHLF: '1.2.840.10008.1.2.4.101.1',
  MPEG4HP41: '1.2.840.10008.1.2.4.102',
  MPEG4HP41F: '1.2.840.10008.1.2.4.102.1',
  MPEG4HP41BD: '1.2.840.10008.1.2.4.103',
  MPEG4HP41BDF: '1.2.840.10008.1.2.4.103.1',
  MPEG4HP422D: '1.2.840.10008.1.2.4.104',
  MPEG4HP422DF: '1.2.840.10008.1.2.4.104.1',
  MPEG4HP423D: '1.2.840.10008.1.2.4.105',
  MPEG4HP423DF: '1.2.840.10008.1.2.4.105.1',
  MPEG4HP42Stereo: '1.2.840.10008.1.2.4.106',
  MPEG4HP42StereoF: '1.2.840.10008.1.2.4.106.1',
  HEVCMP51: '1.2.840.10008.1.2.4.107',
  HEVCM10P51: '1.2.840.10008.1.2.4.108',
  JPEGXLLossless: '1.2.840.10008.1.2.4.110',
  JPEGXLJPEGRecompression: '1.2.840.10008.1.2.4.111',
  JPEGXL: '1.2.840.10008.1.2.4.112',
  HTJ2KLossless: '1.2.840.10008.1.2.4.201',
  HTJ2KLosslessRPCL: '1.2.840.10008.1.2.4.202',
  HTJ2K: '1.2.840.10008.1.2.4.203',
  RLELossless: '1.2.840.10008.1.2.5',
  DeflatedImageFrameCompression: '1.2.840.10008.1.2.8.1',
} as const;

/** Transfer syntaxes accepted for Storage SOP classes (the sender's choice is kept: byte-preserving). */
export const STORAGE_TRANSFER_SYNTAXES: readonly string[] = Object.values(TransferSyntax);

/** Transfer syntaxes accepted for Verification and Query/Retrieve contexts. */
export const COMMAND_TRANSFER_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
];

export const SopClass = {
  Verification: '1.2.840.10008.1.1',
  PatientRootFind: '1.2.840.10008.5.1.4.1.2.1.1',
  PatientRootMove: '1.2.840.10008.5.1.4.1.2.1.2',
  PatientRootGet: '1.2.840.10008.5.1.4.1.2.1.3',
  StudyRootFind: '1.2.840.10008.5.1.4.1.2.2.1',
  StudyRootMove: '1.2.840.10008.5.1.4.1.2.2.2',
  StudyRootGet: '1.2.840.10008.5.1.4.1.2.2.3',
  PatientStudyOnlyFind: '1.2.840.10008.5.1.4.1.2.3.1',
  PatientStudyOnlyMove: '1.2.840.10008.5.1.4.1.2.3.2',
  PatientStudyOnlyGet: '1.2.840.10008.5.1.4.1.2.3.3',
  CompositeInstanceRootMove: '1.2.840.10008.5.1.4.1.2.4.2',
  CompositeInstanceRootGet: '1.2.840.10008.5.1.4.1.2.4.3',
  SecondaryCaptureImageStorage: '1.2.840.10008.5.1.4.1.1.7',
  CTImageStorage: '1.2.840.10008.5.1.4.1.1.2',
  MRImageStorage: '1.2.840.10008.5.1.4.1.1.4',
} as const;

export const FIND_SOP_CLASSES: readonly string[] = [
  SopClass.PatientRootFind,
  SopClass.StudyRootFind,
  SopClass.PatientStudyOnlyFind,
];
export const MOVE_SOP_CLASSES: readonly string[] = [
  SopClass.PatientRootMove,
  SopClass.StudyRootMove,
  SopClass.PatientStudyOnlyMove,
  SopClass.CompositeInstanceRootMove,
];
export const GET_SOP_CLASSES: readonly string[] = [
  SopClass.PatientRootGet,
  SopClass.StudyRootGet,
  SopClass.PatientStudyOnlyGet,
  SopClass.CompositeInstanceRootGet,
];

/**
 * Vendor-private Storage SOP classes commonly sent to archives (accepted by default: an archive must
 * not lose objects because a modality uses a private class).
 */
export const PRIVATE_STORAGE_SOP_CLASSES: readonly string[] = [
  '1.2.840.113619.4.26', // GE Private 3D Model Storage
  '1.2.840.113619.4.27', // GE Private eNTEGRA Protocol / NM Genie Storage
  '1.2.840.113619.4.30', // GE Private PET Raw Data Storage
  '1.3.12.2.1107.5.9.1', // Siemens CSA Non-Image Storage
  '1.3.12.2.1107.5.99.3.10', // Siemens CT/MR Volume Storage
  '1.3.12.2.1107.5.99.3.11', // Siemens AX Frame Sets Storage
  '1.3.46.670589.2.5.1.1', // Philips 3D Object Storage
  '1.3.46.670589.11.0.0.12.1', // Philips MR Spectrum Storage
  '1.3.46.670589.11.0.0.12.2', // Philips MR Series Data Storage
  '1.3.46.670589.11.0.0.12.4', // Philips MR ExamCard Storage
  '1.2.392.200036.9116.7.8.1.1.1', // Toshiba US Private Data Storage
  '1.2.392.200036.9125.1.1.2', // Fuji CR Image Storage
];

const storageSet = new Set([...STORAGE_SOP_CLASSES, ...PRIVATE_STORAGE_SOP_CLASSES]);
/** Root under which the standard allocates (almost all) Storage SOP Classes. */
const STORAGE_ROOT = '1.2.840.10008.5.1.4.1.1.';
/** Q/R-style SOP classes that live under the storage root but are not storage. */
const NON_STORAGE_UNDER_ROOT = new Set([
  '1.2.840.10008.5.1.4.1.1.200.4',
  '1.2.840.10008.5.1.4.1.1.200.5',
  '1.2.840.10008.5.1.4.1.1.200.6',
  '1.2.840.10008.5.1.4.1.1.201.2',
  '1.2.840.10008.5.1.4.1.1.201.3',
  '1.2.840.10008.5.1.4.1.1.201.4',
  '1.2.840.10008.5.1.4.1.1.201.5',
  '1.2.840.10008.5.1.4.1.1.201.6',
]);

/**
 * True for a known standard or vendor-private Storage SOP Class, and for any standard UID under the
 * storage root 1.2.840.10008.5.1.4.1.1 (Storage SOP classes added to the standard after this list
 * was made). For a fully permissive archive, pass `acceptedSopClasses: () => true` to DimseServer.
 */
export function isStorageSopClass(uid: string): boolean {
  if (storageSet.has(uid)) return true;
  return uid.startsWith(STORAGE_ROOT) && !NON_STORAGE_UNDER_ROOT.has(uid) && /^[0-9.]+$/.test(uid);
}

/** True for transfer syntaxes whose datasets are explicit VR little endian (after any deflate). */
export function isImplicitVr(ts: string): boolean {
  return ts === TransferSyntax.ImplicitVRLittleEndian;
}
export function isBigEndian(ts: string): boolean {
  return ts === TransferSyntax.ExplicitVRBigEndian;
}
